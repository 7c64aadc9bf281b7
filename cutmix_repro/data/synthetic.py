"""In-memory synthetic data of any shape and class count, for smoke tests and benchmarks.

Learnable on purpose: each class has a smooth random prototype image and each sample is its
prototype plus noise, so the error of a working trainer falls far below chance quickly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .loaders import DataBundle, tensor_bundle


def make_synthetic(num_classes: int, train_size: int, test_size: int, image_size: int, channels: int,
                   noise: float, data_seed: int):
    g = torch.Generator().manual_seed(data_seed)
    coarse = torch.rand(num_classes, channels, 4, 4, generator=g)
    prototypes = F.interpolate(coarse, size=(image_size, image_size), mode="bilinear", align_corners=False)

    def sample(n):
        y = torch.arange(n) % num_classes
        y = y[torch.randperm(n, generator=g)]
        x = prototypes[y] + noise * torch.randn(n, channels, image_size, image_size, generator=g)
        return (x.clamp(0, 1) * 255).round().to(torch.uint8), y

    return (*sample(train_size), *sample(test_size))


def synthetic(
    num_classes: int,
    train_size: int,
    test_size: int,
    image_size: int,
    channels: int,
    noise: float,
    data_seed: int,
    padding: int,
    hflip: bool,
    **batching,
) -> DataBundle:
    """``batching``: the fields of ``loaders.Batching``."""
    for key, value in (("num_classes", num_classes), ("train_size", train_size), ("test_size", test_size),
                       ("image_size", image_size), ("channels", channels)):
        if value < 1:
            raise ConfigError(key, value, "must be >= 1")
    splits = make_synthetic(num_classes, train_size, test_size, image_size, channels, noise, data_seed)
    half = (0.5,) * channels
    return tensor_bundle("synthetic", splits, num_classes, half, half, padding, hflip, **batching)
