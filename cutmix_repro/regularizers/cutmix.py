"""CutMix (Yun et al., ICCV 2019, arXiv:1905.04899), as the official code does it.

Batch mode follows clovaai/CutMix-PyTorch (its train.py; paper §3.1): one Bernoulli(prob) draw per
batch, one λ ~ Beta(α, α), one permutation, a box whose centre is uniform over the pixels
and whose sides are ⌊W·√(1−λ)⌋ × ⌊H·√(1−λ)⌋, clipped, pasted at the same place in every
image; λ is then recomputed from the pasted area (``correct_lam``). Only the box region is
copied, in place, as the official code does.

``mode="elem"`` draws a λ, box and partner per sample, vectorised with a mask.

The options reproduce the paper's Table 8 variants: ``center="gaussian"`` (box centre from
a centred Gaussian), ``box_size`` (a fixed box), ``label="larger"`` (one-hot label of the
larger part), ``label="complete"`` (targets always 0.5/0.5) and ``prob_schedule="linear"``
(probability rising linearly from 0 to ``prob`` over training; see ``set_progress``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import ConfigError
from .base import BetaSampler, MixedBatch, bernoulli, check_mode, check_prob, unmixed

CENTERS = ("uniform", "gaussian")
LABELS = ("area", "larger", "complete")
SCHEDULES = ("constant", "linear")


def box_sides(lam: float, height: int, width: int) -> tuple[int, int]:
    """Side lengths (h, w) of the cut for a given λ: ⌊H·√(1−λ)⌋, ⌊W·√(1−λ)⌋."""
    cut = math.sqrt(1.0 - lam)
    return int(height * cut), int(width * cut)


def clip_box(cy: int, cx: int, cut_h: int, cut_w: int, height: int, width: int):
    """Corners (y1, y2, x1, x2) of a box centred at (cy, cx), clipped to the image.

    Half-sides are ⌊side/2⌋ on both sides, as in the official ``rand_bbox``."""
    y1 = min(max(cy - cut_h // 2, 0), height)
    y2 = min(max(cy + cut_h // 2, 0), height)
    x1 = min(max(cx - cut_w // 2, 0), width)
    x2 = min(max(cx + cut_w // 2, 0), width)
    return y1, y2, x1, x2


class CutMix:
    """Cut a box from a partner image and paste it in; mix labels by area.

    Args:
        alpha: λ ~ Beta(alpha, alpha).
        prob: probability that a batch (``mode="batch"``) or a sample (``"elem"``) is mixed.
        correct_lam: recompute λ from the pasted (clipped) area.
        mode: ``"batch"`` (one box for the batch, as the paper) or ``"elem"`` (one per sample).
        center: ``"uniform"`` over pixels, or ``"gaussian"`` around the image centre
            (Table 8) with standard deviation ``center_std`` × side length.
        box_size: a fixed square side in pixels (Table 8's 16×16) instead of one drawn from λ.
        label: ``"area"`` (λ from the box, as proposed), ``"larger"`` (one-hot label of the
            larger part) or ``"complete"`` (always 0.5/0.5).
        prob_schedule: ``"constant"`` or ``"linear"`` (0 → ``prob`` over training).
    """

    def __init__(
        self,
        alpha: float = 1.0,
        prob: float = 1.0,
        correct_lam: bool = True,
        mode: str = "batch",
        center: str = "uniform",
        center_std: float = 0.25,
        box_size: int | None = None,
        label: str = "area",
        prob_schedule: str = "constant",
    ):
        self.beta = BetaSampler(alpha)
        self.alpha = self.beta.alpha
        self.prob = check_prob(prob)
        self.correct_lam = bool(correct_lam)
        self.mode = check_mode(mode)
        if center not in CENTERS:
            raise ConfigError("center", center, f"choose one of {', '.join(CENTERS)}")
        if label not in LABELS:
            raise ConfigError("label", label, f"choose one of {', '.join(LABELS)}")
        if prob_schedule not in SCHEDULES:
            raise ConfigError("prob_schedule", prob_schedule, f"choose one of {', '.join(SCHEDULES)}")
        if box_size is not None and box_size <= 0:
            raise ConfigError("box_size", box_size, "must be a positive pixel count")
        if center_std <= 0:
            raise ConfigError("center_std", center_std, "must be > 0")
        self.center, self.center_std = center, float(center_std)
        self.box_size, self.label, self.prob_schedule = box_size, label, prob_schedule
        self.progress = 1.0  # fraction of training done, for prob_schedule="linear"

    def set_progress(self, progress: float) -> None:
        """Tell the schedule how far training is (0 at the start, 1 at the end)."""
        self.progress = min(max(float(progress), 0.0), 1.0)

    @property
    def current_prob(self) -> float:
        return self.prob * self.progress if self.prob_schedule == "linear" else self.prob

    def __call__(self, x: Tensor, y: Tensor) -> MixedBatch:
        if self.mode == "elem":
            return self._mix_elem(x, y)
        if not bernoulli(self.current_prob):
            return unmixed(x, y)
        n, _, height, width = x.shape
        lam = float(self.beta())
        perm = torch.randperm(n, device=x.device)
        cut_h, cut_w = self._sides(lam, height, width)
        cy, cx = self._center(height, width)
        y1, y2, x1, x2 = clip_box(cy, cx, cut_h, cut_w, height, width)
        if x.requires_grad:  # a feature map inside the network: never edit autograd's tensors
            x = x.clone()
        # Only the box moves; the right-hand side is a copy, so in-place is safe.
        x[:, :, y1:y2, x1:x2] = x[perm, :, y1:y2, x1:x2]
        if self.box_size is not None:  # Table 8's fixed box: λ = 1 − s²/(HW), 0.75 for 16 on 32
            lam = 1.0 - cut_h * cut_w / (height * width)
        if self.correct_lam:
            lam = 1.0 - (y2 - y1) * (x2 - x1) / (height * width)
        return MixedBatch(x, y, y[perm], self._label_lam(lam))

    def _sides(self, lam: float, height: int, width: int) -> tuple[int, int]:
        if self.box_size is not None:
            return min(self.box_size, height), min(self.box_size, width)
        return box_sides(lam, height, width)

    def _center(self, height: int, width: int) -> tuple[int, int]:
        if self.center == "uniform":
            c = torch.randint(0, height * width, ())
            return int(c // width), int(c % width)
        g = torch.randn(2)
        cy = int(round(height / 2 + float(g[0]) * self.center_std * height))
        cx = int(round(width / 2 + float(g[1]) * self.center_std * width))
        return min(max(cy, 0), height - 1), min(max(cx, 0), width - 1)

    def _label_lam(self, lam):
        if self.label == "larger":
            return (lam >= 0.5) * 1.0 if isinstance(lam, Tensor) else float(lam >= 0.5)
        if self.label == "complete":
            return torch.full_like(lam, 0.5) if isinstance(lam, Tensor) else 0.5
        return lam

    def _mix_elem(self, x: Tensor, y: Tensor) -> MixedBatch:
        """Per-sample decision, λ, box and partner; every draw is made on the batch's device."""
        n, _, height, width = x.shape
        dev = x.device
        mixed = torch.rand(n, device=dev) < self.current_prob
        lam = self.beta(n, device=dev)
        if self.box_size is not None:
            cut_h = torch.full((n,), min(self.box_size, height), device=dev)
            cut_w = torch.full((n,), min(self.box_size, width), device=dev)
        else:
            cut = torch.sqrt(1.0 - lam)
            cut_h, cut_w = (height * cut).long(), (width * cut).long()
        if self.center == "uniform":
            c = torch.randint(0, height * width, (n,), device=dev)
            cy, cx = c // width, c % width
        else:
            g = torch.randn(2, n, device=dev)
            cy = (height / 2 + g[0] * self.center_std * height).round().long().clamp(0, height - 1)
            cx = (width / 2 + g[1] * self.center_std * width).round().long().clamp(0, width - 1)
        zero = torch.zeros_like(cy)  # an unmixed sample gets an empty box
        y1 = torch.where(mixed, (cy - cut_h // 2).clamp(0, height), zero)
        y2 = torch.where(mixed, (cy + cut_h // 2).clamp(0, height), zero)
        x1 = torch.where(mixed, (cx - cut_w // 2).clamp(0, width), zero)
        x2 = torch.where(mixed, (cx + cut_w // 2).clamp(0, width), zero)
        if self.box_size is not None:
            lam = 1.0 - (cut_h * cut_w).float() / (height * width)
        if self.correct_lam:
            lam = 1.0 - ((y2 - y1) * (x2 - x1)).float() / (height * width)
        lam = torch.where(mixed, lam, torch.ones_like(lam))
        perm = torch.randperm(n, device=dev)
        rows = torch.arange(height, device=dev).view(1, height, 1)
        cols = torch.arange(width, device=dev).view(1, 1, width)
        y1, y2, x1, x2 = (t.view(n, 1, 1) for t in (y1, y2, x1, x2))
        mask = (rows >= y1) & (rows < y2) & (cols >= x1) & (cols < x2)
        out = torch.where(mask.unsqueeze(1), x[perm], x)
        return MixedBatch(out, y, y[perm], self._label_lam(lam))

    def __repr__(self) -> str:
        return (
            f"CutMix(alpha={self.alpha}, prob={self.prob}, correct_lam={self.correct_lam}, "
            f"mode={self.mode!r}, center={self.center!r}, box_size={self.box_size}, "
            f"label={self.label!r}, prob_schedule={self.prob_schedule!r})"
        )
