"""The official learning-rate schedule: ×gamma at fixed fractions of training (and, not the paper's, cosine
with a linear warm-up: ``cosine_warmup``).

The official ``adjust_learning_rate`` decays CIFAR's lr by 0.1 when ``epoch // (epochs·f)`` reaches 1,
f ∈ {0.5, 0.75}: from the first epoch index ≥ f·epochs, i.e. at ⌈f·epochs⌉ (150 and 225 of 300).
ImageNet's 75/150/225 of 300 are the fractions 0.25/0.5/0.75. Here every recipe is written as
fractions of ``trainer.epochs`` with that rule, so a shortened run keeps the shape of the schedule and
never decays before its first epoch (⌈f·epochs⌉ ≥ 1). For ImageNet runs of other lengths the official
code decays every 30 epochs instead; this is a deliberate difference (docs/choices.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, MultiStepLR, SequentialLR

from ..errors import ConfigError


def milestone_epochs(epochs: int, milestones: Sequence[float]) -> list[int]:
    """The epoch indices at which the lr decays: ⌈f·epochs⌉ for each fraction f (as the official code)."""
    for f in milestones:
        if not 0 < f < 1:
            raise ConfigError("milestones", list(milestones), "fractions of training in (0, 1)")
    return [math.ceil(round(f * epochs, 9)) for f in milestones]  # round: 0.1·30 is 3.0000000000000004


def step_decay(optimizer: Optimizer, epochs: int, milestones: Sequence[float], gamma: float) -> MultiStepLR:
    """MultiStepLR stepped once per epoch, ×gamma at each of ``milestone_epochs``."""
    return MultiStepLR(optimizer, milestones=milestone_epochs(epochs, milestones), gamma=gamma)


def cosine_warmup(optimizer: Optimizer, epochs: int, warmup_epochs: int, warmup_start: float,
                  min_lr: float) -> SequentialLR:
    """Not the paper's recipe (``scheduler=cosine``): a linear warm-up from ``warmup_start`` × lr to lr over the
    first ``warmup_epochs`` epochs, then a cosine from lr to ``min_lr`` over the rest; PyTorch's ``LinearLR``,
    ``CosineAnnealingLR`` and ``SequentialLR``, stepped once per epoch as the step schedule."""
    if not 0 <= warmup_epochs < epochs:
        raise ConfigError("warmup_epochs", warmup_epochs, f"0 or more, and fewer than trainer.epochs={epochs}")
    if not 0 < warmup_start <= 1:
        raise ConfigError("warmup_start", warmup_start, "the warm-up's first lr as a fraction of lr, in (0, 1]")
    if min_lr < 0:
        raise ConfigError("min_lr", min_lr, "a learning rate >= 0")
    cosine = CosineAnnealingLR(optimizer, T_max=epochs - warmup_epochs, eta_min=min_lr)
    if warmup_epochs == 0:
        return SequentialLR(optimizer, [cosine], milestones=[])
    warmup = LinearLR(optimizer, start_factor=warmup_start, end_factor=1.0, total_iters=warmup_epochs)
    return SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_epochs])

