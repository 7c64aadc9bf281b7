"""In-memory synthetic data of any shape and class count, for smoke tests and benchmarks.

Learnable on purpose: each class has a smooth random prototype image and each sample is its
prototype plus noise, so the error of a working trainer falls far below chance quickly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .bundle import DataBundle, DataError
from .tensor_loader import TensorLoader


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
    num_classes: int = 10,
    train_size: int = 512,
    test_size: int = 256,
    image_size: int = 32,
    channels: int = 3,
    noise: float = 0.2,
    data_seed: int = 0,
    padding: int = 4,
    hflip: bool = True,
    *,
    batch_size: int,
    device="cpu",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
    eval_batch_size: int | None = None,
) -> DataBundle:
    for key, value in (("num_classes", num_classes), ("train_size", train_size), ("test_size", test_size),
                       ("image_size", image_size), ("channels", channels)):
        if value < 1:
            raise DataError(f"dataset.{key}={value!r} is invalid: must be >= 1")
    train_x, train_y, test_x, test_y = make_synthetic(num_classes, train_size, test_size, image_size, channels,
                                                      noise, data_seed)
    half = (0.5,) * channels
    common = dict(mean=half, std=half, device=device, seed=seed, rank=rank, world_size=world_size)
    return DataBundle(
        name="synthetic",
        train=TensorLoader(train_x, train_y, batch_size, train=True, padding=padding, hflip=hflip,
                           drop_last=drop_last, **common),
        val=TensorLoader(test_x, test_y, eval_batch_size or max(batch_size, 256), train=False, **common),
        num_classes=num_classes,
        image_size=(image_size, image_size),
    )
