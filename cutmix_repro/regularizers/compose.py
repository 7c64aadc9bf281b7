"""Combinations such as the paper's "Cutout + Mixup" (Table 5): a label-preserving step first
(Cutout), then one mixer. The mixer's λ and partner labels are the batch's."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from .base import MixedBatch


def _built(step, key: str):
    """A step given as a config (``_target_`` …) is built here, so that an error in it names its key
    (``first.size``): the YAML sets ``_recursive_: false`` and leaves its sub-configs to us."""
    if isinstance(step, Mapping):
        from ..config import build

        return build(step, key)
    return step


class Compose:
    """Apply ``first`` (which must keep labels, λ = 1) and then ``then``."""

    def __init__(self, first, then):
        self.first, self.then = _built(first, "first"), _built(then, "then")

    @property
    def mixes_features(self) -> bool:
        return bool(getattr(self.then, "mixes_features", False))

    def set_progress(self, progress: float) -> None:
        for step in (self.first, self.then):
            if hasattr(step, "set_progress"):
                step.set_progress(progress)

    def __call__(self, x: Tensor, y: Tensor) -> MixedBatch:
        out = self.first(x, y)
        if out.is_mixed or out.mix_fn is not None:
            raise ValueError(f"{self.first!r} mixes labels; only label-preserving steps may come first")
        return self.then(out.inputs, y)

    def __repr__(self) -> str:
        return f"Compose({self.first!r}, {self.then!r})"
