"""``trainer.ema_decay`` (not the paper's recipe): an exponential moving average of the weights, timm's
``ModelEmaV3`` (parameters and buffers, one fused ``lerp`` over all tensors per step, no host sync), updated
after every optimizer step as timm's train.py does (``update(model, step=updates)``: the first update copies
the weights, every later one moves the average by ``1 − decay`` towards them).

The trainer evaluates the average beside the raw model every epoch (``val_top1_err_ema``, …), keeps it in
every checkpoint (``"ema"``, with the number of updates) and restores it on resume; ``evaluate --weights ema``
scores it.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.utils import ModelEmaV3
from torch import nn

from ..errors import ConfigError


def check_decay(decay) -> float | None:
    if decay is None:
        return None
    if not isinstance(decay, int | float) or not 0 < decay < 1:
        raise ConfigError("trainer.ema_decay", decay, "a decay in (0, 1), e.g. 0.9998 (timm's default), or null "
                          "for no weight EMA")
    return float(decay)


class WeightEMA:
    """The moving average of ``model`` (``module``), updated with ``update()`` after each optimizer step."""

    def __init__(self, model: nn.Module, decay: float):
        self.source = model
        self.average = ModelEmaV3(model, decay=decay)  # a deep copy: build it before torch.compile wraps the model
        self.updates = 0

    @property
    def module(self) -> nn.Module:
        return self.average.module

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        self.average.update(self.source, step=self.updates)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["weights"])
        self.updates = int(state["updates"])
