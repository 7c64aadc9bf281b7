"""Feature-level mixing: CutMix or mixup applied to a feature map inside the network.

Feature CutMix is the paper's Table 3 row and Figure 3 (right); feature-level mixup is
Manifold Mixup (Verma et al., ICML 2019, arXiv:1806.05236). Layer indices follow the paper:
0 = the input image, 1 = after the stem conv-bn, 2 = after stage 1, 3 = after stage 2,
4 = after stage 3. A fixed index, or one drawn uniformly per batch from a set (the paper's
"layer chosen at random for each mini-batch").

The mixing itself is the ordinary CutMix/Mixup, so λ, the box, the permutation and the
probability mean exactly what they mean at the input; on a feature map of size h×w the box
is drawn at that resolution and λ corrected from its area there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import ConfigError
from .base import MixedBatch
from .cutmix import CutMix
from .mixup import Mixup

MAX_LAYER = 4


def check_layers(layers: int | Sequence[int]) -> tuple[int, ...]:
    chosen = (layers,) if isinstance(layers, int) else tuple(layers)
    if not chosen or any(not isinstance(i, int) or not 0 <= i <= MAX_LAYER for i in chosen):
        raise ConfigError("layers", layers, f"feature layer indices lie in 0..{MAX_LAYER} "
                          "(0 = input, 1 = after stem, 2-4 = after stages 1-3)")
    return chosen


class FeatureMix:
    """Mix at a network layer: wraps any mixer (``CutMix``, ``Mixup``)."""

    def __init__(self, mixer, layers: int | Sequence[int]):
        self.mixer = mixer
        self.layers = check_layers(layers)

    @property
    def mixes_features(self) -> bool:
        """True: the mixing happens inside the network (the trainer then compiles stage by stage)."""
        return self.layers != (0,)

    def set_progress(self, progress: float) -> None:
        if hasattr(self.mixer, "set_progress"):
            self.mixer.set_progress(progress)

    def draw_layer(self) -> int:
        if len(self.layers) == 1:
            return self.layers[0]
        return self.layers[int(torch.randint(len(self.layers), ()))]

    def __call__(self, x: Tensor, y: Tensor) -> MixedBatch:
        layer = self.draw_layer()
        if layer == 0:
            return self.mixer(x, y)
        batch = MixedBatch(inputs=x, targets_a=y, targets_b=y, lam=1.0, mix_layer=layer)

        def mix_fn(features: Tensor) -> Tensor:
            mixed = self.mixer(features, y)
            batch.targets_b, batch.lam = mixed.targets_b, mixed.lam
            return mixed.inputs

        batch.mix_fn = mix_fn
        return batch

    def __repr__(self) -> str:
        return f"FeatureMix({self.mixer!r}, layers={self.layers})"


class FeatureCutMix(FeatureMix):
    """CutMix on a feature map (paper Table 3 "Feature CutMix", Figure 3 right)."""

    def __init__(self, layers: int | Sequence[int], alpha: float = 1.0, prob: float = 1.0, **cutmix_options):
        super().__init__(CutMix(alpha=alpha, prob=prob, **cutmix_options), layers)


class FeatureMixup(FeatureMix):
    """mixup on a feature map: Manifold Mixup (paper Tables 3, 5, 7)."""

    def __init__(self, layers: int | Sequence[int], alpha: float = 1.0, prob: float = 1.0, mode: str = "batch",
                 capturable: bool = False):
        super().__init__(Mixup(alpha=alpha, prob=prob, mode=mode, capturable=capturable), layers)
