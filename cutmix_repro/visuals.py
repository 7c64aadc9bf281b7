"""Images for people: normalised batches back to RGB, a mixed batch with its λ, class activation maps
laid over their images. Used by TensorBoard logging (``engine.recorder``) and Figure 1."""

from __future__ import annotations

import torch
from torch import Tensor

from .cam import class_activation_maps, normalize_maps
from .regularizers import MixedBatch


def denormalize(images: Tensor, mean, std) -> Tensor:
    """Normalised (N, C, H, W) images back to RGB in [0, 1] (N, 3, H, W), on the CPU."""
    c = images.shape[1]
    rgb = images.detach().float().cpu() * torch.tensor(std).view(1, c, 1, 1) + torch.tensor(mean).view(1, c, 1, 1)
    rgb = rgb.clamp(0, 1)
    return rgb.expand(-1, 3, -1, -1) if c == 1 else rgb


def mixed_batch(batch: MixedBatch, mean, std, count: int = 16) -> tuple[Tensor, str]:
    """The first ``count`` images a regularizer produced and a caption with their λ (one per image in elem
    mode). For feature-level mixing the images are the input batch and the caption names the layer."""
    images = denormalize(batch.inputs[:count], mean, std)
    lam = batch.lam
    if isinstance(lam, Tensor):
        shown = ", ".join(f"{v:.2f}" for v in lam[:count].tolist())
        caption = f"λ per image: {shown}"
    else:
        caption = f"λ = {lam:.3f} for the whole batch"
    if batch.mix_layer is not None:
        caption = f"mixed inside the network at layer {batch.mix_layer}; shown: the input batch; " + caption
    return images, caption


def fixed_test_images(data, count: int) -> tuple:
    """The first ``count`` test images of a data set: (images, labels, and their boxes if it has them),
    the boxes padded with −1 rows as in a test batch."""
    from .data.wsol import pad_boxes

    samples = [data.val.sample(i) for i in range(min(count, data.val.dataset_size))]
    batch = (torch.stack([s[0] for s in samples]), torch.tensor([s[1] for s in samples], device=samples[0][0].device))
    return (*batch, pad_boxes([s[2] for s in samples])) if len(samples[0]) > 2 else batch


@torch.no_grad()
def predicted_maps(model, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(predicted classes, their CAMs, the box of each map at the paper's threshold), as top-1 localization
    judges them."""
    from .localization import boxes_from_maps

    predicted = model.eval()(images).argmax(1)
    maps = class_activation_maps(model, images, predicted)
    return predicted, maps, boxes_from_maps(maps)[:, 0]


@torch.no_grad()
def cam_overlays(model, images: Tensor, classes: Tensor, mean, std, boxes: Tensor | None = None,
                 alpha: float = 0.5, located: tuple | None = None) -> Tensor:
    """Each image with the (min-max normalised) CAM of its class laid over it in the jet colour map. With
    ``boxes`` (the true boxes, (N, G, 4)): the CAM of the *predicted* class instead (``located``: what
    ``predicted_maps`` gave, if already computed), its box at the paper's threshold in red and the true
    boxes in green (as top-1 localization judges them)."""
    from matplotlib import colormaps
    from torchvision.utils import draw_bounding_boxes

    if boxes is not None:
        _, maps, predicted = located or predicted_maps(model, images)
    else:
        maps = class_activation_maps(model, images, classes)
    heat = torch.from_numpy(colormaps["jet"](normalize_maps(maps).cpu().numpy())[..., :3]).permute(0, 3, 1, 2).float()
    out = (1 - alpha) * denormalize(images, mean, std) + alpha * heat
    if boxes is None:
        return out
    drawn = []
    for image, truth, box in zip((out * 255).round().to(torch.uint8), boxes.cpu(), predicted.cpu()):
        truth = truth[(truth >= 0).all(1)]
        image = draw_bounding_boxes(image, truth, colors="lime", width=1)
        drawn.append(draw_bounding_boxes(image, box.view(1, 4).float(), colors="red", width=1))
    return torch.stack(drawn).float() / 255


@torch.no_grad()
def localization_figure(path, model, images: Tensor, labels: Tensor, boxes: Tensor, mean, std, class_name,
                        title: str) -> list[str]:
    """``localization.png``: each test image with the CAM of its predicted class, that map's box at the paper's
    threshold (red) and the true boxes (green), captioned with the true and the predicted class and the box's
    IoU (✓ when top-1 localization counts it right); ``title`` names the run. Returns the captions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .localization import IOU_THRESHOLD, box_iou

    located = predicted_maps(model, images)
    overlays = cam_overlays(model, images, labels, mean, std, boxes, located=located)
    predicted, _, predicted_boxes = (t.cpu() for t in located)
    ious = box_iou(predicted_boxes, boxes.cpu()).amax(-1)
    labels = labels.cpu()
    captions = []
    for y, p, iou in zip(labels.tolist(), predicted.tolist(), ious.tolist()):
        right = p == y and iou >= IOU_THRESHOLD
        captions.append(f"true: {class_name(y)}\npredicted: {class_name(p)}\nIoU {iou:.2f} {'✓' if right else '✗'}")
    columns = min(4, len(captions))
    rows = -(-len(captions) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.9 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, overlays, captions):
        ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(caption, fontsize=7)
    figure.suptitle(f"{title}\nCAM of the predicted class; its box at threshold 0.15 (red), true boxes (green); "
                    "✓ = class right and IoU ≥ 0.5", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return captions


class FirstMixedBatch:
    """The first mixed batch of an epoch (or, when none is mixed, its first batch), a few images of it
    kept for TensorBoard. The training step offers each batch until one is mixed."""

    def __init__(self, count: int = 16):
        self.count, self.batch, self.done = count, None, False

    def offer(self, batch: MixedBatch) -> None:
        mixed = batch.is_mixed
        if mixed or self.batch is None:
            n = self.count
            lam = batch.lam
            if isinstance(lam, Tensor):  # one λ per image, or one for the batch (a capturable regularizer's)
                lam = float(lam) if lam.dim() == 0 else lam[:n].detach().cpu()
            self.batch = MixedBatch(batch.inputs[:n].detach().cpu(), batch.targets_a[:n], batch.targets_b[:n], lam,
                                    batch.mix_layer)
            self.done = mixed
