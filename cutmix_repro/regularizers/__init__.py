"""Regularizers of the CutMix paper, one small module each.

Every regularizer is a callable ``reg(images, targets) -> MixedBatch`` on a normalised
batch; ``mixed_cross_entropy(logits, batch)`` is the loss for all of them.
"""

from .base import Baseline, BetaSampler, MixedBatch, unmixed
from .compose import Compose
from .cutmix import CutMix, box_sides, clip_box
from .cutout import Cutout
from .feature import FeatureCutMix, FeatureMix, FeatureMixup
from .loss import mixed_cross_entropy
from .mixup import Mixup

__all__ = [
    "Baseline",
    "BetaSampler",
    "Compose",
    "CutMix",
    "Cutout",
    "FeatureCutMix",
    "FeatureMix",
    "FeatureMixup",
    "MixedBatch",
    "Mixup",
    "box_sides",
    "clip_box",
    "mixed_cross_entropy",
    "unmixed",
]
