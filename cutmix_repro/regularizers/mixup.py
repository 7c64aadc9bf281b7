"""mixup (Zhang et al., ICLR 2018, arXiv:1710.09412): x̃ = λ·x + (1−λ)·x[perm].

Same probability semantics as CutMix: in batch mode one Bernoulli(prob) draw per batch (an
unmixed batch comes back unchanged with λ = 1) and one λ ~ Beta(α, α); in ``mode="elem"``
each sample draws its own decision, λ and (through one permutation) partner.

``capturable=True`` (batch mode) makes the same draws in the same order on the batch's device and
never reads them on the host: λ is a 0-dim tensor, 1 where the decision says no. The blend weight
takes the batch's dtype, so bf16 feature maps stay bf16.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import BetaSampler, MixedBatch, bernoulli, check_mode, check_prob, unmixed


class Mixup:
    """Blend each image with a partner from the same batch; mix labels with the same λ."""

    def __init__(self, alpha: float = 1.0, prob: float = 1.0, mode: str = "batch", capturable: bool = False):
        self.beta = BetaSampler(alpha)
        self.alpha = self.beta.alpha
        self.prob = check_prob(prob)
        self.mode = check_mode(mode)
        self.capturable = bool(capturable)

    def __call__(self, x: Tensor, y: Tensor) -> MixedBatch:
        n, dev = x.shape[0], x.device
        if self.mode == "batch" and not self.capturable:
            if not bernoulli(self.prob):
                return unmixed(x, y)
            lam = float(self.beta())
            weight = lam
        elif self.mode == "batch":  # the same draws, on the device
            if self.prob <= 0.0:
                return unmixed(x, y)
            mixed = torch.rand((), device=dev) < self.prob if self.prob < 1.0 else None
            lam = self.beta(device=dev)
            if mixed is not None:
                lam = torch.where(mixed, lam, torch.ones_like(lam))
            weight = lam.to(x.dtype) if x.is_floating_point() else lam
        else:
            draws = self.beta(n, device=dev)
            lam = torch.where(torch.rand(n, device=dev) < self.prob, draws, torch.ones_like(draws))
            weight = lam.view(n, *([1] * (x.dim() - 1)))
            weight = weight.to(x.dtype) if x.is_floating_point() else weight
        perm = torch.randperm(n, device=dev)
        if x.is_floating_point():
            mixed = x * weight + x[perm] * (1 - weight)
        else:  # uint8 images: blend in float, round back
            mixed = (x.float() * weight + x[perm].float() * (1 - weight)).round().to(x.dtype)
        return MixedBatch(mixed, y, y[perm], lam)

    def __repr__(self) -> str:
        extra = ", capturable=True" if self.capturable else ""
        return f"Mixup(alpha={self.alpha}, prob={self.prob}, mode={self.mode!r}{extra})"
