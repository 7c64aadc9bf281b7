"""The CutMix/mixup loss: λ·CE(out, y_a) + (1−λ)·CE(out, y_b) (paper §3.1; the official train.py); and, not the
paper's, binary cross-entropy on the mixed soft target (``mixed_binary_cross_entropy``, ``loss=bce``).

This equals cross-entropy against the soft target λ·onehot(y_a) + (1−λ)·onehot(y_b), and
label smoothing (Szegedy et al., 2016) composes with it: each CE term is smoothed.

λ as a tensor (per sample, or a 0-dim one from a ``capturable`` regularizer) is used without any
branch on its value, so the loss compiles into one graph; λ = 1 then gives CE(out, y_a) exactly.
A Python float λ (the official slicing path) skips the second term when λ = 1, as before.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import MixedBatch


def mixed_cross_entropy(logits: Tensor, out: MixedBatch, label_smoothing: float = 0.0) -> Tensor:
    """Mean over the batch of λ·CE(logits, y_a) + (1−λ)·CE(logits, y_b)."""
    lam = out.lam
    if isinstance(lam, Tensor):  # one λ per sample (mode="elem"), or one on the device (0-dim)
        reduction = "mean" if lam.dim() == 0 else "none"
        ce_a = F.cross_entropy(logits, out.targets_a, reduction=reduction, label_smoothing=label_smoothing)
        ce_b = F.cross_entropy(logits, out.targets_b, reduction=reduction, label_smoothing=label_smoothing)
        loss = lam.to(ce_a.dtype) * ce_a + (1 - lam).to(ce_a.dtype) * ce_b
        return loss if lam.dim() == 0 else loss.mean()
    ce_a = F.cross_entropy(logits, out.targets_a, label_smoothing=label_smoothing)
    if lam >= 1.0:
        return ce_a
    ce_b = F.cross_entropy(logits, out.targets_b, label_smoothing=label_smoothing)
    return lam * ce_a + (1 - lam) * ce_b


def mixed_binary_cross_entropy(logits: Tensor, out: MixedBatch, label_smoothing: float = 0.0) -> Tensor:
    """Not the paper's loss (``loss=bce``, timm's option): binary cross-entropy of every class's logit against the
    mixed soft target λ·t(y_a) + (1−λ)·t(y_b), t the one-hot label smoothed as timm's ``mixup_target`` does
    (off = ε/C, on = 1 − ε + ε/C), averaged over images and classes as timm's ``BinaryCrossEntropy``."""
    classes = logits.shape[-1]
    off = label_smoothing / classes
    on = 1.0 - label_smoothing + off

    def smoothed(targets: Tensor) -> Tensor:
        return torch.full_like(logits, off).scatter_(1, targets.view(-1, 1), on)

    lam = out.lam
    if isinstance(lam, Tensor):
        lam = lam.to(logits.dtype).view(-1, 1) if lam.dim() else lam.to(logits.dtype)
    target = lam * smoothed(out.targets_a) + (1 - lam) * smoothed(out.targets_b)
    return F.binary_cross_entropy_with_logits(logits, target)

