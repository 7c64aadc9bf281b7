"""What every data set factory returns to the trainer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DataError(ValueError):
    """Data that cannot be used: the message names the config key, the value and the fix."""


@dataclass
class DataBundle:
    name: str
    train: Any  # iterable of (images, targets) on the device; len(), set_epoch(), num_samples
    val: Any
    num_classes: int
    image_size: tuple[int, int]
