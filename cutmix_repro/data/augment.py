"""``augment=trivialaugment|randaugment`` and ``augment.random_erasing=P`` (not the paper's recipe): torchvision's
v2 ``TrivialAugmentWide``, ``RandAugment`` and ``RandomErasing``, added to the paper's augmentation.

Where they go, on every training path (the paper's own steps unchanged around them):
- the policy after the crop and flip, on uint8 images (as torchvision's reference recipe puts its
  ``--auto-augment`` after ``RandomResizedCrop`` + flip); on ImageNet before the paper's colour jitter and
  lighting, which stay;
- random erasing last, on the normalised image (erased to 0 = the mean colour, torchvision's default value),
  as the reference recipe's ``--random-erase``.

The PIL path (ImageNet on the CPU) puts the transforms into its ``Compose``. The tensor paths (CIFAR held on
the GPU, ImageNet decoded on the GPU) hold whole batches: torchvision's v2 transforms draw one operation per
call, so ``Augment`` calls them once per image (a Python loop over the batch: its cost is measured by
``python -m cutmix_repro.bench``, section 9), with torch's CPU generator seeded from (seed, epoch, rank, step):
a batch's draws depend on nothing else, so a resumed run draws them again exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.transforms import v2

from ..errors import ConfigError

POLICIES = ("none", "trivialaugment", "randaugment")


class Augment:
    """The extra augmentation of a run; ``Augment()`` (the default) is the paper's: nothing added. (A plain class,
    not a dataclass: Hydra's ``instantiate`` would turn a dataclass passed to a data set factory into a config.)"""

    def __init__(self, policy: str = "none", num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31,
                 random_erasing: float = 0.0):
        if policy not in POLICIES:
            raise ConfigError("policy", policy, f"one of {', '.join(POLICIES)}")
        if not 0 <= random_erasing <= 1:
            raise ConfigError("random_erasing", random_erasing, "a probability in [0, 1] (0 = off)")
        if policy == "randaugment" and not (num_ops >= 1 and 0 <= magnitude < num_magnitude_bins):
            raise ConfigError("magnitude", magnitude, f"0 <= magnitude < num_magnitude_bins ({num_magnitude_bins}), "
                              f"with num_ops >= 1 (got {num_ops})")
        self.policy = policy  # none, trivialaugment or randaugment
        self.num_ops, self.magnitude = num_ops, magnitude  # RandAugment: torchvision's defaults 2 and 9 (of 31 bins)
        self.num_magnitude_bins = num_magnitude_bins
        self.random_erasing = float(random_erasing)  # probability of erasing one rectangle per image (0 = off)
        self._transforms = {"policy": self.policy_transform(), "erasing": self.erasing_transform()}  # built once

    def __repr__(self) -> str:
        return f"Augment({self.describe()})"

    @property
    def active(self) -> bool:
        return self.policy != "none" or self.random_erasing > 0

    def describe(self) -> str:
        """How the switch is written in results.json and the tables: ``trivialaugment(random_erasing=0.25)``."""
        if self.policy == "none":
            return f"random_erasing({self.random_erasing})"
        options = {"randaugment": f"num_ops={self.num_ops}, magnitude={self.magnitude}"}.get(self.policy, "")
        if self.random_erasing:
            options = ", ".join(o for o in (options, f"random_erasing={self.random_erasing}") if o)
        return f"{self.policy}({options})"

    def policy_transform(self) -> v2.Transform | None:
        """The policy on one uint8 image (tensor or PIL), or None."""
        if self.policy == "trivialaugment":
            return v2.TrivialAugmentWide()
        if self.policy == "randaugment":
            return v2.RandAugment(num_ops=self.num_ops, magnitude=self.magnitude,
                                  num_magnitude_bins=self.num_magnitude_bins)
        return None

    def erasing_transform(self) -> v2.RandomErasing | None:
        """Random erasing on one normalised float image, or None."""
        return v2.RandomErasing(p=self.random_erasing) if self.random_erasing > 0 else None

    def batch(self, images: Tensor, stage: str, seed: int) -> Tensor:
        """``stage`` (``policy`` on uint8 images, ``erasing`` on normalised ones) applied to each image of the
        batch (N, C, H, W) on its device, the draws from torch's CPU generator seeded with ``seed`` (the rest
        of the program's random state is left as it was)."""
        transform = self._transforms[stage]
        if transform is None:
            return images
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed((2 * seed + (stage == "erasing")) % 2**63)
            return torch.stack([transform(image) for image in images])


def step_seed(seed: int, epoch: int, rank: int, step: int) -> int:
    """The seed of one batch's augmentation (the GPU-decoded ImageNet draws, and the extra augmentation): a function
    of (seed, epoch, rank, step) only, within the 64 bits a torch generator takes."""
    return (((seed * 1_000_003 + epoch) * 1_009 + rank) * 1_000_033 + step) % 2**64


def check_supported(augment: Augment | None, dataset: str) -> None:
    """Data sets whose training transform does not take the extra augmentation say so in one line."""
    if augment is not None and augment.active:
        raise ConfigError("augment", augment.describe(), f"not available on {dataset} (its training transform is "
                          "the weakly supervised localization recipe): use augment=none")
