"""Figure 1 of the paper as one command: two images, their Mixup, Cutout and CutMix versions, and for
each the class activation map of either image's class.

    python -m cutmix_repro.figure1 --run RUN_DIR [--indices I J | --images A.jpg B.jpg] [--out figure1.png]
    python -m cutmix_repro.figure1 --torchvision-resnet50 [--weights FILE] --images A.jpg B.jpg

The grid is the paper's: one column per augmentation (Mixup, Cutout, CutMix), rows = the two inputs,
the augmented input (λ in its title), the CAM of image A's class, the CAM of image B's class. The
paper drew its maps with torchvision's pretrained ImageNet ResNet-50 (``--torchvision-resnet50``,
when its weights are on this machine: nothing is downloaded); ``--run`` takes a run directory of ours
(or a checkpoint inside one) and its data set (``--indices``: test images; by default the first two of
different classes). The three augmentations share one λ (``--lam``, 0.5 by default) and one centred box
of area (1 − λ): Mixup blends λ·A + (1 − λ)·B, Cutout zeroes the box in A, CutMix pastes B's box into A
(λ recomputed from the clipped box, as the CutMix code does).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from .cam import class_activation_maps, normalize_maps
from .errors import ConfigError
from .regularizers import box_sides, clip_box
from .visuals import denormalize


def augmented_pair(a: Tensor, b: Tensor, lam: float) -> list[tuple[str, Tensor, float]]:
    """(name, image, λ) for Mixup, Cutout and CutMix of the normalised images ``a`` and ``b`` (C, H, W)."""
    _, height, width = a.shape
    cut_h, cut_w = box_sides(lam, height, width)
    y1, y2, x1, x2 = clip_box(height // 2, width // 2, cut_h, cut_w, height, width)
    cutout, cutmix = a.clone(), a.clone()
    cutout[:, y1:y2, x1:x2] = 0.0  # zero after normalisation: the data set's mean colour, as Cutout
    cutmix[:, y1:y2, x1:x2] = b[:, y1:y2, x1:x2]
    area_lam = 1.0 - (y2 - y1) * (x2 - x1) / (height * width)
    return [("Mixup", lam * a + (1 - lam) * b, lam), ("Cutout", cutout, 1.0), ("CutMix", cutmix, area_lam)]


def to_rgb(image: Tensor, mean, std) -> Tensor:
    """A normalised (C, H, W) image back to [0, 1] RGB (H, W, 3) for drawing."""
    return denormalize(image.unsqueeze(0), mean, std)[0].permute(1, 2, 0)


def draw(path: Path, a: Tensor, b: Tensor, names: tuple[str, str], rows: list, mean, std) -> Path:
    """The 4 × 3 grid: inputs, augmented input, CAM of A's class, CAM of B's class (per augmentation)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(4, len(rows), figsize=(3 * len(rows), 11))
    pair = torch.cat([to_rgb(a, mean, std), torch.ones(a.shape[1], 2, 3), to_rgb(b, mean, std)], dim=1)
    for col, (name, image, lam, cams) in enumerate(rows):
        axes[0, col].imshow(pair.numpy())
        axes[0, col].set_title(f"A: {names[0]}  |  B: {names[1]}", fontsize=8)
        axes[1, col].imshow(to_rgb(image, mean, std).numpy())
        axes[1, col].set_title(f"{name}, λ = {lam:.2f}" if name != "Cutout" else f"{name} of A", fontsize=9)
        for row, (cam, label) in enumerate(zip(cams, names), start=2):
            axes[row, col].imshow(to_rgb(image, mean, std).numpy())
            axes[row, col].imshow(cam.numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
            axes[row, col].set_title(f"CAM for '{label}'", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    figure.suptitle("Mixup, Cutout and CutMix and their class activation maps (paper Figure 1)", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def panels(model, a: Tensor, b: Tensor, classes: tuple[int, int], lam: float = 0.5) -> list:
    """(augmentation, augmented image, its λ, [CAM of ``classes[0]`` (A's class), CAM of ``classes[1]`` (B's)])
    for Mixup, Cutout and CutMix; each CAM min-max scaled to [0, 1]."""
    rows = []
    for name, image, shown_lam in augmented_pair(a, b, lam):
        cams = normalize_maps(class_activation_maps(model, torch.stack([image, image]), torch.tensor(classes)))
        rows.append((name, image, shown_lam, list(cams)))
    return rows


def figure1(model, a: Tensor, b: Tensor, classes: tuple[int, int], names: tuple[str, str], mean, std,
            out: Path, lam: float = 0.5) -> Path:
    return draw(out, a, b, names, panels(model, a, b, classes, lam), mean, std)


def torchvision_resnet50(weights: str | None):
    """torchvision's ImageNet ResNet-50 (the paper's Figure 1 model) in timm's identical layout, with the
    staged interface; only from a file already on this machine."""
    from torchvision.models import ResNet50_Weights

    from .models import create_model
    from .models.pretrained import load_starting_weights, torchvision_file

    default, url = torchvision_file("resnet50")
    path = Path(weights) if weights else default
    if not path.is_file():
        raise ConfigError("--weights", str(path), f"torchvision's ImageNet ResNet-50 weights are not on this "
                          f"machine ({url}): place {default.name} there or pass --weights FILE, or pass "
                          "--run RUN_DIR to draw with a model of ours")
    model = create_model("resnet50", num_classes=1000)
    try:  # any format models.pretrained reads, with or without num_batches_tracked; the classifier too
        load_starting_weights(model.net, str(path), "resnet50", classifier=None)
    except ConfigError as err:
        raise ConfigError("--weights", str(path), err.problem) from None
    return model.eval(), ResNet50_Weights.IMAGENET1K_V1.meta["categories"]


def read_image(path: str, transform) -> Tensor:
    try:
        with Image.open(path) as img:
            return transform(img.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise ConfigError("--images", path, f"not a readable image ({type(err).__name__})") from None


def first_two_of_different_classes(val) -> tuple[int, int]:
    first = val.sample(0)[1]
    for i in range(1, val.dataset_size):
        if val.sample(i)[1] != first:
            return 0, i
    raise ConfigError("--indices", None, "the test set has a single class: give --indices I J")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutmix_repro.figure1",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))  # the first paragraph
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a run directory of ours, or a checkpoint inside one")
    source.add_argument("--torchvision-resnet50", action="store_true", help="torchvision's ImageNet ResNet-50")
    parser.add_argument("--weights", help="the ResNet-50 weights file (default: torch hub's cache)")
    images = parser.add_mutually_exclusive_group()
    images.add_argument("--indices", nargs=2, type=int, metavar=("I", "J"), help="two test images of the run's data")
    images.add_argument("--images", nargs=2, metavar=("A", "B"), help="two image files")
    parser.add_argument("--classes", nargs=2, type=int, metavar=("CA", "CB"),
                        help="the classes of the two images (default: their labels, or the model's top-1 for files)")
    parser.add_argument("--lam", type=float, default=0.5, help="λ of the three augmentations (default 0.5)")
    parser.add_argument("--out", default="figure1.png", help="the PNG to write (default figure1.png)")
    args = parser.parse_args(argv)
    try:
        path = _run(args)
    except (ConfigError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"Figure 1 written to {path}")
    return 0


def _run(args) -> Path:
    from torchvision import transforms as T

    from .data.transforms import IMAGENET_MEAN, IMAGENET_STD

    if not 0.0 < args.lam < 1.0:
        raise ConfigError("--lam", args.lam, "a mixing ratio in (0, 1)")
    labels: tuple[int, int] | None = None
    if args.torchvision_resnet50:
        if args.images is None:
            raise ConfigError("--images", None, "torchvision's ResNet-50 needs two image files")
        model, categories = torchvision_resnet50(args.weights)
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        transform = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(mean, std)])
        a, b = (read_image(p, transform) for p in args.images)
    else:
        from .saved import load_run

        run = load_run(args.run)
        model, data = run.model, run.data(batch_size=2)
        categories, mean, std = data.class_names, data.mean, data.std
        if args.images:
            height, width = data.val.sample(0)[0].shape[-2:]
            transform = T.Compose([T.Resize((height, width)), T.ToTensor(), T.Normalize(mean, std)])
            a, b = (read_image(p, transform) for p in args.images)
            if a.shape[0] != len(mean):
                a, b = a.mean(0, keepdim=True), b.mean(0, keepdim=True)
        else:
            indices = args.indices or first_two_of_different_classes(data.val)
            for i in indices:
                if not 0 <= i < data.val.dataset_size:
                    raise ConfigError("--indices", i, f"the test set has images 0..{data.val.dataset_size - 1}")
            (a, label_a, *_), (b, label_b, *_) = (data.val.sample(i) for i in indices)
            a, b, labels = a.cpu(), b.cpu(), (label_a, label_b)
    if args.classes:
        labels = tuple(args.classes)
        num_classes = model.head_parts()[1].out_features
        for c in labels:
            if not 0 <= c < num_classes:
                raise ConfigError("--classes", c, f"the model has classes 0..{num_classes - 1}")
    if labels is None:  # files: the model's own top-1 class for each image
        with torch.no_grad():
            labels = tuple(int(c) for c in model(torch.stack([a, b])).argmax(1))
    names = tuple(categories[c] if categories else f"class {c}" for c in labels)
    return figure1(model, a, b, labels, names, mean, std, Path(args.out), args.lam)


if __name__ == "__main__":
    sys.exit(main())
