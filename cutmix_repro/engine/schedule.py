"""The official learning-rate schedule: ×gamma at fixed fractions of training.

The official ``adjust_learning_rate`` decays CIFAR's lr by 0.1 when ``epoch // (epochs·f)`` reaches 1,
f ∈ {0.5, 0.75}: from the first epoch index ≥ f·epochs, i.e. at ⌈f·epochs⌉ (150 and 225 of 300).
ImageNet's 75/150/225 of 300 are the fractions 0.25/0.5/0.75. Here every recipe is written as
fractions of ``trainer.epochs`` with that rule, so a shortened run keeps the shape of the schedule and
never decays before its first epoch (⌈f·epochs⌉ ≥ 1). For ImageNet runs of other lengths the official
code decays every 30 epochs instead; this is a deliberate difference (see the README's choices).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import MultiStepLR

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
