"""The official learning-rate schedule: ×gamma at fixed fractions of training.

The official ``adjust_learning_rate`` decays CIFAR's lr at epochs/2 and 3·epochs/4 (150 and
225 of 300) and ImageNet's every 75 epochs (75, 150, 225 of 300); expressed as fractions of
``trainer.epochs`` here, so a shortened run keeps the shape of the schedule."""

from __future__ import annotations

from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import MultiStepLR


def step_decay(optimizer: Optimizer, epochs: int, milestones: Sequence[float] = (0.5, 0.75),
               gamma: float = 0.1) -> MultiStepLR:
    """MultiStepLR stepped once per epoch, decaying at round(f · epochs) for each fraction f."""
    for f in milestones:
        if not 0 < f < 1:
            raise ValueError(f"scheduler.milestones={list(milestones)!r} is invalid: fractions of training in (0, 1)")
    return MultiStepLR(optimizer, milestones=[round(f * epochs) for f in milestones], gamma=gamma)
