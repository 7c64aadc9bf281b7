"""Cutout (DeVries & Taylor, 2017, arXiv:1708.04552).

A size×size square per image, centre uniform over the pixels, clipped at the border, set to
zero. Applied to the normalised batch, so zero is the data set's mean colour, as in the
original code (which cuts after ``Normalize``). Labels are untouched: λ = 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError
from .base import MixedBatch, check_prob


class Cutout:
    """Zero a random square in each image (each image independently with ``prob``)."""

    def __init__(self, size: int = 16, prob: float = 1.0):
        if not (isinstance(size, int) and size > 0):
            raise ConfigError("size", size, "the Cutout side must be a positive int")
        self.size = size
        self.prob = check_prob(prob)

    def __call__(self, x: Tensor, y: Tensor) -> MixedBatch:
        n, _, height, width = x.shape
        cy = torch.randint(0, height, (n,), device=x.device).view(n, 1, 1)
        cx = torch.randint(0, width, (n,), device=x.device).view(n, 1, 1)
        cut = torch.rand(n, device=x.device).view(n, 1, 1) < self.prob
        half = self.size // 2
        rows = torch.arange(height, device=x.device).view(1, height, 1)
        cols = torch.arange(width, device=x.device).view(1, 1, width)
        # Same corners as the original: clip(c - size//2) .. clip(c + size//2)
        hole = (rows >= cy - half) & (rows < cy + half) & (cols >= cx - half) & (cols < cx + half)
        hole = (hole & cut).unsqueeze(1)
        if x.requires_grad:
            x = x.masked_fill(hole, 0)
        else:
            x.masked_fill_(hole, 0)
        return MixedBatch(inputs=x, targets_a=y, targets_b=y, lam=1.0)

    def __repr__(self) -> str:
        return f"Cutout(size={self.size}, prob={self.prob})"
