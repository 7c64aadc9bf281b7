"""Mixup or CutMix, one of the two for each batch: what today's ImageNet recipes train with (DeiT, ConvNeXt,
timm's and torchvision's references: timm's ``Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5)``,
torchvision's ``RandomChoice([MixUp(alpha=0.8), CutMix(alpha=1.0)])``). Not the CutMix paper's: the paper
compares Mixup and CutMix, each alone.

Batch mode is timm's ``Mixup`` in ``mode="batch"``, draw for draw: one Bernoulli(``prob``) whether to mix at all,
then one Bernoulli(``switch_prob``) for CutMix over Mixup, then λ from the chosen one's Beta(α, α), one partner
permutation and (CutMix) the box, with timm's box (``box="timm"``: a side of odd length keeps all its pixels) and
λ from the pasted area. Given the same draws, the images and the loss equal timm's (``tests``: timm pairs image
i with image n−1−i, our permutation is random; the test hands both the same). ``mode="elem"``: each sample draws
its own decision, method, λ and partner, as timm's ``mode="elem"``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import MixedBatch, bernoulli, check_mode, check_prob, unmixed
from .cutmix import CutMix
from .mixup import Mixup


class MixupCutMix:
    """Per batch (or sample), CutMix with probability ``switch_prob``, else Mixup."""

    def __init__(self, mixup_alpha: float, cutmix_alpha: float, switch_prob: float, prob: float, mode: str,
                 box: str):
        self.mode = check_mode(mode)
        self.prob = check_prob(prob)
        self.switch_prob = check_prob(switch_prob, "switch_prob")
        self.mixup = Mixup(alpha=mixup_alpha, prob=1.0, mode=mode)
        self.cutmix = CutMix(alpha=cutmix_alpha, prob=1.0, correct_lam=True, mode=mode, box=box)

    def __call__(self, x: Tensor, y: Tensor) -> MixedBatch:
        if self.mode == "batch":
            if not bernoulli(self.prob):
                return unmixed(x, y)
            return (self.cutmix if bernoulli(self.switch_prob) else self.mixup)(x, y)
        n, dev = x.shape[0], x.device
        mixed = torch.rand(n, device=dev) < self.prob
        use_cutmix = torch.rand(n, device=dev) < self.switch_prob
        cut, blend = self.cutmix(x, y), self.mixup(x, y)
        pick = use_cutmix.view(n, *([1] * (x.dim() - 1)))
        keep = mixed.view_as(pick)
        inputs = torch.where(keep, torch.where(pick, cut.inputs, blend.inputs), x)
        targets_b = torch.where(mixed, torch.where(use_cutmix, cut.targets_b, blend.targets_b), y)
        lam = torch.where(use_cutmix, torch.as_tensor(cut.lam, device=dev).float(),
                          torch.as_tensor(blend.lam, device=dev).float())
        return MixedBatch(inputs, y, targets_b, torch.where(mixed, lam, torch.ones_like(lam)))

    def __repr__(self) -> str:
        return (f"MixupCutMix(mixup_alpha={self.mixup.alpha}, cutmix_alpha={self.cutmix.alpha}, "
                f"switch_prob={self.switch_prob}, prob={self.prob}, mode={self.mode!r}, box={self.cutmix.box!r})")
