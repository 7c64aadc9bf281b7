"""CutMix (Yun et al., ICCV 2019, arXiv:1905.04899), as the official code does it.

Batch mode follows clovaai/CutMix-PyTorch (its train.py; paper §3.1): one Bernoulli(prob) draw per
batch, one λ ~ Beta(α, α), one permutation, a box whose centre is uniform over the pixels
and whose sides are ⌊W·√(1−λ)⌋ × ⌊H·√(1−λ)⌋, clipped, pasted at the same place in every
image; λ is then recomputed from the pasted area (``correct_lam``). Only the box region is
copied, in place, as the official code does.

``mode="elem"`` draws a λ, box and partner per sample, vectorised with a mask.

``capturable=True`` (batch mode) makes the same draws in the same order on the batch's device and
pastes the box with a mask: the decision, λ and box are device tensors and nothing reads them on
the host, so the step can be compiled as one graph and captured as a CUDA graph. Given the same
draws it gives the same pixels and λ as the slicing path (λ is then a 0-dim float64 tensor).

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


BOXES = ("authors", "timm")


def clip_box(cy: int, cx: int, cut_h: int, cut_w: int, height: int, width: int, box: str = "authors"):
    """Corners (y1, y2, x1, x2) of a box centred at (cy, cx), clipped to the image.

    ``box="authors"``: half-sides ⌊side/2⌋ on both sides, as the official ``rand_bbox`` (an odd side loses a
    pixel); ``"timm"``: ⌊side/2⌋ before the centre and ⌈side/2⌉ after it, as timm's ``rand_bbox``."""
    after_h, after_w = ((cut_h + 1) // 2, (cut_w + 1) // 2) if box == "timm" else (cut_h // 2, cut_w // 2)
    y1 = min(max(cy - cut_h // 2, 0), height)
    y2 = min(max(cy + after_h, 0), height)
    x1 = min(max(cx - cut_w // 2, 0), width)
    x2 = min(max(cx + after_w, 0), width)
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
        capturable: batch mode with every draw and decision on the device (see the module's text).
        box: ``"authors"`` (their ``rand_bbox``: ⌊side/2⌋ either side of the centre) or ``"timm"`` (timm's:
            ⌈side/2⌉ after it; ``regularizer=mixup_cutmix``, which follows timm's ``Mixup``).
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
        capturable: bool = False,
        box: str = "authors",
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
        if box not in BOXES:
            raise ConfigError("box", box, f"choose one of {', '.join(BOXES)}")
        self.box = box
        if box_size is not None and box_size <= 0:
            raise ConfigError("box_size", box_size, "must be a positive pixel count")
        if center_std <= 0:
            raise ConfigError("center_std", center_std, "must be > 0")
        self.center, self.center_std = center, float(center_std)
        self.box_size, self.label, self.prob_schedule = box_size, label, prob_schedule
        self.capturable = bool(capturable)
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
        if self.capturable:
            return self._mix_on_device(x, y)
        if not bernoulli(self.current_prob):
            return unmixed(x, y)
        n, _, height, width = x.shape
        lam = float(self.beta())
        perm = torch.randperm(n, device=x.device)
        cut_h, cut_w = self._sides(lam, height, width)
        cy, cx = self._center(height, width)
        y1, y2, x1, x2 = clip_box(cy, cx, cut_h, cut_w, height, width, self.box)
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

    def _mix_on_device(self, x: Tensor, y: Tensor) -> MixedBatch:
        """Batch mode with device tensors only: the draws of ``__call__`` in its order (decision, λ,
        permutation, centre), the box pasted with a mask, λ = 1 where the decision says no."""
        prob = self.current_prob
        if prob <= 0.0:
            return unmixed(x, y)
        n, _, height, width = x.shape
        dev = x.device
        mixed = torch.rand((), device=dev) < prob if prob < 1.0 else None
        lam = self.beta(device=dev).double()
        perm = torch.randperm(n, device=dev)
        cut_h, cut_w = self._device_sides(lam, height, width)
        cy, cx = self._device_center((), height, width, dev)
        return self._paste(x, y, perm, lam, cut_h, cut_w, cy, cx, mixed)

    def _mix_elem(self, x: Tensor, y: Tensor) -> MixedBatch:
        """Per-sample decision, λ, box and partner; every draw is made on the batch's device."""
        n, _, height, width = x.shape
        dev = x.device
        mixed = torch.rand(n, device=dev) < self.current_prob
        lam = self.beta(n, device=dev).double()
        cut_h, cut_w = self._device_sides(lam, height, width)
        cy, cx = self._device_center((n,), height, width, dev)
        perm = torch.randperm(n, device=dev)
        out = self._paste(x, y, perm, lam, cut_h, cut_w, cy, cx, mixed)
        out.lam = out.lam.float()
        return out

    def _device_sides(self, lam: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
        """``_sides`` on tensors: ⌊H·√(1−λ)⌋ × ⌊W·√(1−λ)⌋ in float64, as Python computes it."""
        if self.box_size is not None:
            return (torch.full_like(lam, min(self.box_size, height), dtype=torch.long),
                    torch.full_like(lam, min(self.box_size, width), dtype=torch.long))
        cut = torch.sqrt(1.0 - lam)
        return (height * cut).long(), (width * cut).long()

    def _device_center(self, shape: tuple[int, ...], height: int, width: int, dev) -> tuple[Tensor, Tensor]:
        """``_center`` on tensors: one centre (``shape=()``) or one per sample (``(n,)``)."""
        if self.center == "uniform":
            c = torch.randint(0, height * width, shape, device=dev)
            return c // width, c % width
        g = torch.randn(2, *shape, device=dev).double()
        cy = (height / 2 + g[0] * self.center_std * height).round().long().clamp(0, height - 1)
        cx = (width / 2 + g[1] * self.center_std * width).round().long().clamp(0, width - 1)
        return cy, cx

    def _paste(self, x: Tensor, y: Tensor, perm: Tensor, lam: Tensor, cut_h: Tensor, cut_w: Tensor, cy: Tensor,
               cx: Tensor, mixed: Tensor | None) -> MixedBatch:
        """Paste each box (corners as ``clip_box``; an empty box where ``mixed`` is False) from the
        partner ``x[perm]``; λ from the area as ``__call__`` (float64), 1 where unmixed. The corners are
        0-dim (one box for the batch) or (N,) tensors (one per sample)."""
        height, width = x.shape[-2:]
        after_h, after_w = ((cut_h + 1) // 2, (cut_w + 1) // 2) if self.box == "timm" else (cut_h // 2, cut_w // 2)
        y1, y2 = (cy - cut_h // 2).clamp(0, height), (cy + after_h).clamp(0, height)
        x1, x2 = (cx - cut_w // 2).clamp(0, width), (cx + after_w).clamp(0, width)
        if mixed is not None:
            y2, x2 = torch.where(mixed, y2, y1), torch.where(mixed, x2, x1)
        if self.box_size is not None:
            lam = 1.0 - (cut_h * cut_w).double() / (height * width)
        if self.correct_lam:
            lam = 1.0 - ((y2 - y1) * (x2 - x1)).double() / (height * width)
        if mixed is not None:
            lam = torch.where(mixed, lam, torch.ones_like(lam))
        rows = torch.arange(height, device=x.device).view(1, height, 1)
        cols = torch.arange(width, device=x.device).view(1, 1, width)
        y1, y2, x1, x2 = (t.reshape(-1, 1, 1) for t in (y1, y2, x1, x2))
        mask = (rows >= y1) & (rows < y2) & (cols >= x1) & (cols < x2)
        out = torch.where(mask.unsqueeze(1), x[perm], x)
        return MixedBatch(out, y, y[perm], self._label_lam(lam))

    def __repr__(self) -> str:
        return (
            f"CutMix(alpha={self.alpha}, prob={self.prob}, correct_lam={self.correct_lam}, "
            f"mode={self.mode!r}, center={self.center!r}, box_size={self.box_size}, "
            f"label={self.label!r}, prob_schedule={self.prob_schedule!r}"
            + (f", box={self.box!r}" if self.box != "authors" else "")
            + (", capturable=True)" if self.capturable else ")")
        )
