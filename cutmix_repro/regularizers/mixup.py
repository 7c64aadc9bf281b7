"""mixup (Zhang et al., ICLR 2018, arXiv:1710.09412): x̃ = λ·x + (1−λ)·x[perm].

Same probability semantics as CutMix: in batch mode one Bernoulli(prob) draw per batch (an
unmixed batch comes back unchanged with λ = 1) and one λ ~ Beta(α, α); in ``mode="elem"``
each sample draws its own decision, λ and (through one permutation) partner.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import BetaSampler, MixedBatch, bernoulli, check_mode, check_prob, unmixed


class Mixup:
    """Blend each image with a partner from the same batch; mix labels with the same λ."""

    def __init__(self, alpha: float = 1.0, prob: float = 1.0, mode: str = "batch"):
        self.beta = BetaSampler(alpha)
        self.alpha = self.beta.alpha
        self.prob = check_prob(prob)
        self.mode = check_mode(mode)

    def __call__(self, x: Tensor, y: Tensor) -> MixedBatch:
        n = x.shape[0]
        if self.mode == "batch":
            if not bernoulli(self.prob):
                return unmixed(x, y)
            lam = float(self.beta())
            weight = lam
        else:
            draws = self.beta(n, device=x.device)
            lam = torch.where(torch.rand(n, device=x.device) < self.prob, draws, torch.ones_like(draws))
            weight = lam.view(n, *([1] * (x.dim() - 1)))
        perm = torch.randperm(n, device=x.device)
        if x.is_floating_point():
            mixed = x * weight + x[perm] * (1 - weight)
        else:  # uint8 images: blend in float, round back
            mixed = (x.float() * weight + x[perm].float() * (1 - weight)).round().to(x.dtype)
        return MixedBatch(mixed, y, y[perm], lam)

    def __repr__(self) -> str:
        return f"Mixup(alpha={self.alpha}, prob={self.prob}, mode={self.mode!r})"
