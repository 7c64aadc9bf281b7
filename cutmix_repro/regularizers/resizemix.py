"""ResizeMix (Qin et al., "ResizeMix: Mixing Data with Preserved Object Information and True Labels", 2020,
arXiv:2012.11101). Not in the CutMix paper: a later mixer, compared under its protocol by ``reproduce
beyond_mixers``.

The partner image, whole, is resized (bilinear) to a box of round(τ·H) × round(τ·W) pixels, τ ~ U(τ_min, τ_max)
= U(0.1, 0.8) (the paper's α, β), and pasted at a random place where the box lies inside the image (its top-left
corner uniform over those places), so every pixel of the partner is there, shrunk. λ, the image's own share,
is 1 − (box area) / (image area) from the integer box. ``mode="batch"``: one τ, place and permutation for the
batch; ``mode="elem"``: a τ and place per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .base import MixedBatch, bernoulli, check_mode, check_prob, unmixed


def resized_box(tau: float, height: int, width: int) -> tuple[int, int, int, int]:
    """(y1, y2, x1, x2) of a round(τH) × round(τW) box (at least 1 pixel) at a uniform place inside the image."""
    h, w = max(1, round(tau * height)), max(1, round(tau * width))
    y1 = int(torch.randint(height - h + 1, ()))
    x1 = int(torch.randint(width - w + 1, ()))
    return y1, y1 + h, x1, x1 + w


class ResizeMix:
    """Paste the partner image, resized by τ ~ U(tau_min, tau_max), into a box; λ from the box's area."""

    def __init__(self, tau_min: float = 0.1, tau_max: float = 0.8, prob: float = 1.0, mode: str = "batch"):
        if not 0 < tau_min <= tau_max <= 1:
            raise ConfigError("tau_min", tau_min, f"scales need 0 < tau_min <= tau_max <= 1 (tau_max={tau_max})")
        self.tau_min, self.tau_max = float(tau_min), float(tau_max)
        self.prob = check_prob(prob)
        self.mode = check_mode(mode)

    def tau(self) -> float:
        return self.tau_min + (self.tau_max - self.tau_min) * float(torch.rand(()))

    @staticmethod
    def _paste(target: Tensor, source: Tensor, box: tuple[int, int, int, int]) -> None:
        y1, y2, x1, x2 = box
        shrunk = F.interpolate(source.float(), size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False)
        target[:, :, y1:y2, x1:x2] = shrunk.round().to(target.dtype) if not target.is_floating_point() else \
            shrunk.to(target.dtype)

    def __call__(self, x: Tensor, y: Tensor) -> MixedBatch:
        n, _, height, width = x.shape
        if self.mode == "batch":
            if not bernoulli(self.prob):
                return unmixed(x, y)
            box = resized_box(self.tau(), height, width)
            perm = torch.randperm(n, device=x.device)
            out = x.clone()
            self._paste(out, x[perm], box)
            y1, y2, x1, x2 = box
            return MixedBatch(out, y, y[perm], 1.0 - (y2 - y1) * (x2 - x1) / (height * width))
        perm = torch.randperm(n, device=x.device)
        out, lam = x.clone(), torch.ones(n, dtype=torch.float64)
        for i in range(n):
            if bool(torch.rand(()) < self.prob):
                y1, y2, x1, x2 = box = resized_box(self.tau(), height, width)
                self._paste(out[i:i + 1], x[perm[i]:perm[i] + 1], box)
                lam[i] = 1.0 - (y2 - y1) * (x2 - x1) / (height * width)
        return MixedBatch(out, y, y[perm], lam.to(x.device))

    def __repr__(self) -> str:
        return f"ResizeMix(tau_min={self.tau_min}, tau_max={self.tau_max}, prob={self.prob}, mode={self.mode!r})"
