"""Weakly supervised object localization from class activation maps (paper §4.2, Table 9, appendix B),
scored with the conventions of the field's reference implementation, clovaai/wsolevaluation (Choe et
al., "Evaluating Weakly Supervised Object Localization Methods Right", CVPR 2020; by one of the CutMix
authors: the code behind published MaxBoxAcc numbers), so that our numbers compare with published ones.

From a map (at the input size: ``cam.maps_from_features`` upsamples bicubically, as the reference's
``cv2.resize(..., INTER_CUBIC)``) to a verdict, at a threshold t:

1. **levels**: the map is min-max scaled to [0, 1] in float32 (a constant map, or one with a NaN,
   becomes 0) and truncated to 8-bit levels ⌊255·s⌋ (the reference's ``(scoremap * 255).astype(np.uint8)``);
2. **mask**: the pixels whose level is above ⌊255·t⌋ (its ``cv2.threshold(..., int(t · 255), THRESH_BINARY)``);
3. **box**: around the largest 8-connected region of the mask (of equal ones, the first in raster order),
   x0, y0 its first column and row, x1, y1 one past its last, clipped to W − 1 and H − 1 (the reference's
   ``cv2.boundingRect`` ends, clipped as it clips them); an empty mask gives (0, 0, 0, 0);
4. **IoU** with inclusive ends (a box covers x1 − x0 + 1 columns, the reference's
   ``calculate_multiple_iou``) against each true box (its corners truncated to integers, as the
   reference's ``resize_bbox``); the box is right when IoU ≥ 0.5 with the best of them.

Accuracies, in percent:

- **top-1 localization** (the paper's): at t = 0.15, the predicted class's box is right *and* the top-1
  class is right;
- **GT-known**: at t = 0.15, the true class's box is right, the class ignored;
- **MaxBoxAcc** (the reference's box metric of the CVPR paper): GT-known at the best t of its grid,
  ``np.arange(0, 1, 0.01)`` (its ``cam_curve_interval``), IoU ≥ 0.5;
- **MaxBoxAccV2** (the reference's recommended metric, beyond the paper): the boxes of *all* regions of
  the mask (the best IoU among them), the best t for each IoU threshold of 0.3, 0.5 and 0.7, averaged.

One deliberate difference: the reference's region is the contour of largest ``cv2.contourArea``, ours the
8-connected region of most pixels (``scipy.ndimage.label``); on the same mask the two give the same box in
more than 99.8% of cases. For V2, the reference's contours also include the inner boundaries of holes;
ours are the regions only. The connected regions come from ``scipy.ndimage.label`` on the CPU and from
batched label propagation on a GPU (3×3 max pooling with pointer jumping until nothing changes); both
give the same boxes (tested).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .cam import maps_from_features

THRESHOLD = 0.15  # the paper's CAM threshold for top-1 localization and GT-known
IOU_THRESHOLD = 0.5
V2_IOU_THRESHOLDS = (0.3, 0.5, 0.7)  # MaxBoxAccV2 (wsolevaluation's iou_threshold_list)
CAM_CURVE_INTERVAL = 0.01  # MaxBoxAcc's threshold grid (wsolevaluation's evaluation.py default)


def cam_thresholds(interval: float = CAM_CURVE_INTERVAL) -> tuple[float, ...]:
    """The reference's grid, ``np.arange(0, 1, interval)``: 0, 0.01, …, 0.99."""
    return tuple(float(t) for t in np.arange(0, 1, interval))


def level_cutoff(threshold: float) -> int:
    """The 8-bit level a pixel must exceed at ``threshold``: ⌊255·t⌋ (the reference's ``int(t · max level)``,
    the maximum level of a scaled map being 255)."""
    return int(threshold * 255)


def score_levels(maps: Tensor) -> Tensor:
    """(N, H, W) maps → uint8 levels: each map minus its minimum, divided by the new maximum, in float32,
    times 255, truncated; a constant map or one with a NaN gives zeros (the reference's
    ``normalize_scoremap``, then its ``astype(np.uint8)``)."""
    maps = maps.float()
    flat = maps.flatten(1)
    shifted = maps - flat.amin(1).view(-1, 1, 1)
    span = shifted.flatten(1).amax(1)
    bad = ~(span > 0) | flat.isnan().any(1)  # constant, or NaN anywhere
    scaled = shifted / torch.where(bad, torch.ones_like(span), span).view(-1, 1, 1)
    scaled = torch.where(bad.view(-1, 1, 1), torch.zeros_like(scaled), scaled)
    return (scaled * 255).to(torch.uint8)


# --- regions of a mask ----------------------------------------------------------------------------------
def region_labels(masks: Tensor, method: str = "auto") -> Tensor:
    """(M, H, W) boolean masks → (M, H, W) int64 labels of their 8-connected regions: 0 outside, 1, 2, …
    inside, numbered in the raster order of each region's first pixel. ``method``: ``scipy``
    (``scipy.ndimage.label``, one call per mask: the CPU), ``torch`` (label propagation, batched on the
    masks' device: the GPU), ``auto`` by device."""
    if method == "auto":
        method = "scipy" if masks.device.type == "cpu" else "torch"
    if method == "scipy":
        return _labels_scipy(masks)
    if method == "torch":
        return _labels_torch(masks)
    raise ValueError(f"method={method!r} is invalid: choose auto, scipy or torch")


def _labels_scipy(masks: Tensor) -> Tensor:
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    out = np.zeros(masks.shape, dtype=np.int64)
    for i, mask in enumerate(masks.cpu().numpy()):
        out[i] = ndimage.label(mask, structure=eight)[0]  # numbered in raster order of first pixels
    return torch.from_numpy(out).to(masks.device)


def _labels_torch(masks: Tensor) -> Tensor:
    m, h, w = masks.shape
    if m == 0:
        return torch.zeros(masks.shape, dtype=torch.long, device=masks.device)
    # every pixel of a region ends with the value of the region's first pixel (raster order): hw − index
    first = torch.arange(h * w, 0, -1, device=masks.device, dtype=torch.float32).view(1, 1, h, w)
    inside = masks.unsqueeze(1).float()
    labels = first * inside
    while True:
        spread = F.max_pool2d(labels, 3, stride=1, padding=1) * inside
        # pointer jumping: a label names a pixel of the same region; take that pixel's label
        flat = spread.view(m, h * w)
        named = flat.gather(1, (h * w - flat.long()).clamp(0, h * w - 1)).view_as(spread)
        spread = torch.maximum(spread, named * inside)
        if torch.equal(spread, labels):
            break
        labels = spread
    # first-pixel index → 1, 2, … in raster order of first pixels (h·w marks the outside)
    ids = torch.where(masks.view(m, h * w), h * w - labels.view(m, h * w).long(), h * w)
    present = torch.zeros(m, h * w + 1, dtype=torch.int32, device=masks.device).scatter_(1, ids, 1)
    present[:, h * w] = 0
    rank = present.cumsum(1, dtype=torch.int32) * present
    return rank.gather(1, ids).view(m, h, w).long()


def region_boxes(labels: Tensor) -> tuple[Tensor, Tensor]:
    """From (M, H, W) labels: every region's box (M, L, 4) in the reference's convention (x0, y0 first
    column and row; x1, y1 one past the last, clipped to W − 1, H − 1) and its pixel count (M, L); region
    l is at index l − 1, L the most regions of any mask, absent regions have count 0."""
    m, h, w = labels.shape
    count = int(labels.max()) if labels.numel() else 0
    flat = labels.view(m, h * w)
    ys = torch.arange(h, device=labels.device).view(1, h, 1).expand(m, h, w).reshape(m, h * w)
    xs = torch.arange(w, device=labels.device).view(1, 1, w).expand(m, h, w).reshape(m, h * w)

    def reduce(values, how, fill):
        out = torch.full((m, count + 1), fill, dtype=torch.long, device=labels.device)
        return out.scatter_reduce(1, flat, values, how, include_self=True)[:, 1:]

    sizes = torch.zeros(m, count + 1, dtype=torch.long, device=labels.device).scatter_add_(
        1, flat, torch.ones_like(flat))[:, 1:]
    x0, y0 = reduce(xs, "amin", w), reduce(ys, "amin", h)
    x1, y1 = (reduce(xs, "amax", -1) + 1).clamp_max(w - 1), (reduce(ys, "amax", -1) + 1).clamp_max(h - 1)
    return torch.stack([x0, y0, x1, y1], -1), sizes


def candidate_boxes(masks: Tensor, method: str = "auto") -> tuple[Tensor, Tensor, Tensor]:
    """(M, H, W) masks → the boxes a mask offers (M, L, 4), which of them are real (M, L), and the index of
    the largest region's (M,): every region's box, and for a mask without any region the one box
    (0, 0, 0, 0) (the reference's box for an empty mask) in slot 0."""
    boxes, sizes = region_boxes(region_labels(masks, method))
    if sizes.shape[1] == 0:  # no mask has a region
        boxes = torch.zeros(masks.shape[0], 1, 4, dtype=torch.long, device=masks.device)
        sizes = torch.zeros(masks.shape[0], 1, dtype=torch.long, device=masks.device)
    empty = sizes.amax(1) == 0
    boxes[empty, 0] = 0
    real = (sizes > 0) | (empty.view(-1, 1) & (torch.arange(sizes.shape[1], device=sizes.device) == 0))
    return boxes, real, sizes.argmax(1)  # argmax: the first of equals, the region whose first pixel comes first


def largest_region_boxes(masks: Tensor, method: str = "auto") -> Tensor:
    """(M, H, W) masks → (M, 4) boxes around each mask's largest 8-connected region (the first of equals in
    raster order), in the reference's convention; an empty mask gives (0, 0, 0, 0)."""
    boxes, _, largest = candidate_boxes(masks, method)
    return boxes.gather(1, largest.view(-1, 1, 1).expand(-1, 1, 4))[:, 0]


def masks_at(levels: Tensor, cutoffs: list[int]) -> Tensor:
    """(N, H, W) 8-bit levels → (N·C, H, W) masks, the pixels above each cutoff, image by image."""
    n, h, w = levels.shape
    cut = torch.tensor(cutoffs, device=levels.device).view(1, -1, 1, 1)
    return (levels.unsqueeze(1).long() > cut).view(-1, h, w)


def boxes_from_maps(maps: Tensor, thresholds=(THRESHOLD,), method: str = "auto") -> Tensor:
    """(N, H, W) maps → (N, T, 4) boxes of the largest region, one per threshold."""
    masks = masks_at(score_levels(maps), [level_cutoff(t) for t in thresholds])
    return largest_region_boxes(masks, method).view(len(maps), len(thresholds), 4)


def box_iou(boxes: Tensor, truth: Tensor) -> Tensor:
    """IoU of each box (N, ..., 4) with each true box (N, G, 4) → (N, ..., G), with inclusive ends (a box
    covers x1 − x0 + 1 columns, as the reference's ``calculate_multiple_iou``), in float64; a
    non-positive union gives 0; padding true boxes (all −1) give −1."""
    b = boxes.unsqueeze(-2).double()  # (N, ..., 1, 4)
    g = truth.view(truth.shape[0], *([1] * (boxes.dim() - 2)), *truth.shape[1:]).double()  # (N, ..., G, 4)
    w = (torch.minimum(b[..., 2], g[..., 2]) - torch.maximum(b[..., 0], g[..., 0]) + 1).clamp_min(0)
    h = (torch.minimum(b[..., 3], g[..., 3]) - torch.maximum(b[..., 1], g[..., 1]) + 1).clamp_min(0)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0] + 1) * (x[..., 3] - x[..., 1] + 1)  # noqa: E731
    union = area(b) + area(g) - inter
    iou = torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(inter))
    return torch.where((g < 0).all(-1), torch.full_like(iou, -1.0), iou)


def best_ious(levels: Tensor, cutoffs: list[int], truth: Tensor, method: str = "auto",
              chunk: int = 2048) -> tuple[Tensor, Tensor]:
    """For each map (N, H, W uint8 levels) and cutoff: the best IoU with a true box (N, G, 4) of the largest
    region's box, and of any region's box (MaxBoxAccV2); both (N, C). Masks are labelled ``chunk`` at a time."""
    n, c = len(levels), len(cutoffs)
    largest_iou = torch.empty(n, c, dtype=torch.float64, device=levels.device)
    any_iou = torch.empty(n, c, dtype=torch.float64, device=levels.device)
    per = max(1, chunk // c)
    for start in range(0, n, per):
        part = slice(start, start + per)
        boxes, real, largest = candidate_boxes(masks_at(levels[part], cutoffs), method)
        ious = box_iou(boxes, truth[part].repeat_interleave(c, 0)).amax(-1)  # (M, L): each box's best true box
        largest_iou[part] = ious.gather(1, largest.view(-1, 1)).view(-1, c)
        any_iou[part] = ious.masked_fill(~real, -1.0).amax(1).view(-1, c)
    return largest_iou, any_iou


class LocalizationMeter:
    """Counts of right boxes on the device: top-1 localization and GT-known at the paper's threshold, and
    at every threshold of the grid GT-known (MaxBoxAcc) and the all-regions counts at each IoU threshold of
    MaxBoxAccV2."""

    def __init__(self, device, thresholds=None, method: str = "auto"):
        self.thresholds = cam_thresholds() if thresholds is None else tuple(thresholds)
        self.method = method
        self.top1_loc = torch.zeros((), dtype=torch.float64, device=device)
        self.gt_known = torch.zeros((), dtype=torch.float64, device=device)
        self.sweep = torch.zeros(len(self.thresholds), dtype=torch.float64, device=device)
        self.sweep_v2 = torch.zeros(len(V2_IOU_THRESHOLDS), len(self.thresholds), dtype=torch.float64, device=device)
        self.count = 0

    @torch.no_grad()
    def update(self, features: Tensor, classifier, size, targets: Tensor, truth: Tensor, logits: Tensor) -> None:
        """From one evaluation batch: the pooled feature map, the classifier, the image size (H, W), the
        labels, ``truth`` (N, G, 4) the true boxes in the images' pixels padded with −1 rows, the logits."""
        predicted = logits.argmax(1)
        maps = maps_from_features(features, classifier, torch.cat([predicted, targets]), size)
        self.update_maps(maps[: len(targets)], maps[len(targets):], predicted == targets, truth)

    @torch.no_grad()
    def update_maps(self, predicted_maps: Tensor, true_maps: Tensor, class_right: Tensor, truth: Tensor) -> None:
        """From the maps of the predicted and of the true class (N, H, W), whether the top-1 class is right
        (N,), and the true boxes (N, G, 4)."""
        paper = level_cutoff(THRESHOLD)
        pred_iou, _ = best_ious(score_levels(predicted_maps), [paper], truth, self.method)
        cutoffs = [paper, *(level_cutoff(t) for t in self.thresholds)]
        true_iou, true_any = best_ious(score_levels(true_maps), cutoffs, truth, self.method)
        self.top1_loc += ((pred_iou[:, 0] >= IOU_THRESHOLD) & class_right.to(pred_iou.device)).sum()
        self.gt_known += (true_iou[:, 0] >= IOU_THRESHOLD).sum()
        self.sweep += (true_iou[:, 1:] >= IOU_THRESHOLD).sum(0)
        for i, iou in enumerate(V2_IOU_THRESHOLDS):
            self.sweep_v2[i] += (true_any[:, 1:] >= iou).sum(0)
        self.count += len(class_right)

    def compute(self, reduce=None) -> dict[str, float]:
        """The accuracies; ``reduce`` sums the counts over the processes of a DDP run in place (the engine's
        ``distributed.all_reduce_sum``), none: this process's."""
        totals = torch.cat([self.top1_loc.view(1), self.gt_known.view(1), self.sweep, self.sweep_v2.flatten(),
                            torch.tensor([float(self.count)], dtype=torch.float64, device=self.sweep.device)])
        if reduce is not None:
            reduce(totals)
        n = max(float(totals[-1]), 1.0)
        t = len(self.thresholds)
        sweep = totals[2 : 2 + t] * 100.0 / n
        v2 = (totals[2 + t : -1] * 100.0 / n).view(len(V2_IOU_THRESHOLDS), t).amax(1)
        best = int(sweep.argmax())
        return {"top1_loc": float(totals[0]) * 100.0 / n, "gt_known_loc": float(totals[1]) * 100.0 / n,
                "max_box_acc": float(sweep[best]), "max_box_acc_threshold": self.thresholds[best],
                "max_box_acc_v2": float(v2.mean())}
