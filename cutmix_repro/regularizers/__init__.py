"""Regularizers of the CutMix paper, the later mixers ResizeMix, FMix and SaliencyMix, and today's recipes'
Mixup-or-CutMix (``MixupCutMix``), one small module each.

Every regularizer is a callable ``reg(images, targets) -> MixedBatch`` on a normalised
batch; ``mixed_cross_entropy(logits, batch)`` is the loss for all of them.
"""

from .base import Baseline, BetaSampler, MixedBatch, unmixed
from .compose import Compose
from .cutmix import CutMix, box_sides, clip_box
from .cutout import Cutout
from .feature import FeatureCutMix, FeatureMix, FeatureMixup
from .fmix import FMix
from .loss import mixed_binary_cross_entropy, mixed_cross_entropy
from .mixup import Mixup
from .mixup_cutmix import MixupCutMix
from .resizemix import ResizeMix
from .saliencymix import SaliencyMix

__all__ = [
    "Baseline",
    "BetaSampler",
    "Compose",
    "CutMix",
    "Cutout",
    "FMix",
    "FeatureCutMix",
    "FeatureMix",
    "FeatureMixup",
    "MixedBatch",
    "Mixup",
    "MixupCutMix",
    "ResizeMix",
    "SaliencyMix",
    "box_sides",
    "clip_box",
    "mixed_binary_cross_entropy",
    "mixed_cross_entropy",
    "unmixed",
]
