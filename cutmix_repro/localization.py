"""Weakly supervised object localization from class activation maps (paper §4.2, Table 9, appendix B).

A map gives a box: scale it to [0, 1] by its own minimum and maximum, keep the pixels at or above the
threshold (0.15: "0.15 × the map's maximum"), and take the tightest box around the largest 8-connected
region. A box is right when its IoU with a ground-truth box of the image (the best one, if there are
several) is above 0.5. Three accuracies, in percent:

- **top-1 localization** (the paper's): the box of the predicted class's map is right *and* the
  top-1 class is right;
- **GT-known localization**: the box of the true class's map is right, the class ignored;
- **MaxBoxAcc** (Choe et al., "Evaluating Weakly Supervised Object Localization Methods Right",
  CVPR 2020), beyond the paper: the GT-known accuracy at the best of a sweep of thresholds, since one
  fixed threshold flatters some methods.

The connected regions come from ``scipy.ndimage.label`` on the CPU (0.6 ms for a 224×224 map here) and
from batched label propagation on a GPU (3×3 max pooling with pointer jumping until nothing changes:
about 160 rounds for 224×224 maps, each cheap on a GPU but 30 ms for 64 maps on this 2-core CPU, so
the CPU uses scipy); both give the same boxes (tested).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .cam import maps_from_features, normalize_maps

THRESHOLD = 0.15
IOU_THRESHOLD = 0.5
SWEEP = tuple(round(0.05 * i, 2) for i in range(1, 20))  # MaxBoxAcc's thresholds: 0.05, 0.10, …, 0.95


def largest_region_boxes(masks: Tensor, method: str = "auto") -> Tensor:
    """(N, H, W) boolean masks → (N, 4) boxes (x1, y1, x2, y2), ends exclusive, around each mask's largest
    8-connected region (of equal ones, the one whose first pixel comes first in raster order); an empty
    mask gives 0, 0, 0, 0. ``method``: ``scipy`` (``scipy.ndimage.label``, the CPU: one pass per map),
    ``torch`` (label propagation by max pooling, batched on the maps' device: the GPU), ``auto`` by device."""
    if method == "auto":
        method = "scipy" if masks.device.type == "cpu" else "torch"
    regions = _largest_region_scipy(masks) if method == "scipy" else _largest_region_torch(masks)
    rows, cols = regions.any(2), regions.any(1)
    n, h, w = masks.shape
    ar_h, ar_w = torch.arange(h, device=masks.device), torch.arange(w, device=masks.device)
    x1, y1 = torch.where(cols, ar_w, w).min(1).values, torch.where(rows, ar_h, h).min(1).values
    x2, y2 = torch.where(cols, ar_w, -1).max(1).values + 1, torch.where(rows, ar_h, -1).max(1).values + 1
    boxes = torch.stack([x1, y1, x2, y2], 1)
    return torch.where(rows.any(1).view(n, 1), boxes, torch.zeros_like(boxes))


def _largest_region_scipy(masks: Tensor) -> Tensor:
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    out = np.zeros(masks.shape, dtype=bool)
    for i, mask in enumerate(masks.cpu().numpy()):
        labels, count = ndimage.label(mask, structure=eight)
        if count:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            out[i] = labels == sizes.argmax()  # argmax: the first (raster order) of equal sizes
    return torch.from_numpy(out).to(masks.device)


def _largest_region_torch(masks: Tensor) -> Tensor:
    n, h, w = masks.shape
    # every pixel of a region ends with the value of the region's first pixel (raster order): the largest
    first = torch.arange(h * w, 0, -1, device=masks.device, dtype=torch.float32).view(1, 1, h, w)
    inside = masks.unsqueeze(1).float()
    labels = first * inside
    while True:
        spread = F.max_pool2d(labels, 3, stride=1, padding=1) * inside
        # pointer jumping: a label names a pixel of the same region; take that pixel's label
        flat = spread.view(n, h * w)
        named = flat.gather(1, (h * w - flat.long()).clamp(0, h * w - 1)).view_as(spread)
        spread = torch.maximum(spread, named * inside)
        if torch.equal(spread, labels):
            break
        labels = spread
    labels = labels.view(n, h * w).long()
    sizes = torch.zeros(n, h * w + 1, device=masks.device).scatter_add_(1, labels, torch.ones_like(labels,
                                                                                                  dtype=torch.float))
    sizes[:, 0] = 0
    largest = h * w - sizes.flip(1).argmax(1)  # flipped: of equal sizes, the largest value (first pixel)
    return (labels == largest.view(n, 1)).view(n, h, w) & masks


def boxes_from_maps(maps: Tensor, thresholds=(THRESHOLD,)) -> Tensor:
    """(N, H, W) maps → (N, T, 4) boxes, one per threshold, from the min-max scaled maps."""
    scaled = normalize_maps(maps)
    levels = torch.tensor(thresholds, device=maps.device, dtype=scaled.dtype).view(1, -1, 1, 1)
    masks = scaled.unsqueeze(1) >= levels  # (N, T, H, W)
    n, t, h, w = masks.shape
    return largest_region_boxes(masks.view(n * t, h, w)).view(n, t, 4)


def box_iou(boxes: Tensor, truth: Tensor) -> Tensor:
    """IoU of each box (N, ..., 4) with each true box (N, G, 4) → (N, ..., G); padding boxes (all −1) give −1."""
    b = boxes.unsqueeze(-2).float()  # (N, ..., 1, 4)
    g = truth.view(truth.shape[0], *([1] * (boxes.dim() - 2)), *truth.shape[1:]).float()  # (N, ..., G, 4)
    w = (torch.minimum(b[..., 2], g[..., 2]) - torch.maximum(b[..., 0], g[..., 0])).clamp_min(0)
    h = (torch.minimum(b[..., 3], g[..., 3]) - torch.maximum(b[..., 1], g[..., 1])).clamp_min(0)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]).clamp_min(0) * (x[..., 3] - x[..., 1]).clamp_min(0)  # noqa: E731
    iou = inter / (area(b) + area(g) - inter).clamp_min(1e-12)
    return torch.where((g < 0).all(-1), torch.full_like(iou, -1.0), iou)


class LocalizationMeter:
    """Counts of right boxes on the device: top-1 localization and GT-known at the paper's threshold, and
    GT-known at every threshold of the sweep (MaxBoxAcc)."""

    def __init__(self, device, thresholds=SWEEP):
        self.thresholds = tuple(thresholds)
        self.top1_loc = torch.zeros((), dtype=torch.float64, device=device)
        self.gt_known = torch.zeros((), dtype=torch.float64, device=device)
        self.sweep = torch.zeros(len(self.thresholds), dtype=torch.float64, device=device)
        self.count = 0

    @torch.no_grad()
    def update(self, features: Tensor, classifier, size, targets: Tensor, truth: Tensor, logits: Tensor) -> None:
        """From one evaluation batch: the pooled feature map, the classifier, the image size (H, W), the
        labels, ``truth`` (N, G, 4) the true boxes in the images' pixels padded with −1 rows, the logits."""
        predicted = logits.argmax(1)
        maps = maps_from_features(features, classifier, torch.cat([predicted, targets]), size)
        n = targets.shape[0]
        levels = (THRESHOLD, *self.thresholds)
        pred_boxes = boxes_from_maps(maps[:n], (THRESHOLD,))[:, 0]
        true_boxes = boxes_from_maps(maps[n:], levels)  # (N, 1 + T, 4)
        right_pred = box_iou(pred_boxes, truth).max(-1).values > IOU_THRESHOLD
        right_true = box_iou(true_boxes, truth).max(-1).values > IOU_THRESHOLD  # (N, 1 + T)
        self.top1_loc += (right_pred & (predicted == targets)).sum()
        self.gt_known += right_true[:, 0].sum()
        self.sweep += right_true[:, 1:].sum(0)
        self.count += n

    def compute(self, distributed: bool = True) -> dict[str, float]:
        from .engine.distributed import all_reduce_sum

        totals = torch.cat([self.top1_loc.view(1), self.gt_known.view(1), self.sweep,
                            torch.tensor([float(self.count)], dtype=torch.float64, device=self.sweep.device)])
        if distributed:
            all_reduce_sum(totals)
        n = max(float(totals[-1]), 1.0)
        sweep = totals[2:-1] * 100.0 / n
        best = int(sweep.argmax())
        return {"top1_loc": float(totals[0]) * 100.0 / n, "gt_known_loc": float(totals[1]) * 100.0 / n,
                "max_box_acc": float(sweep[best]), "max_box_acc_threshold": self.thresholds[best]}
