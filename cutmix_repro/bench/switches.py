"""Sections 9 and 10: the recipe switches' costs: extra augmentation (``augment=``) on the GPU-resident CIFAR
loader, and one weight-EMA update (``trainer.ema_decay``)."""

from __future__ import annotations

import torch

from .common import median_time

AUGMENT_CASES = (("none (the paper's)", {}), ("trivialaugment", {"policy": "trivialaugment"}),
                 ("randaugment", {"policy": "randaugment"}), ("random_erasing=0.25", {"random_erasing": 0.25}),
                 ("trivialaugment + random_erasing=0.25", {"policy": "trivialaugment", "random_erasing": 0.25}))


def bench_augment(num_images: int, batch_size: int, min_run_time: float, device: str = "cpu") -> list[dict]:
    """One epoch of the GPU-resident CIFAR loader (``TensorLoader``: crop, flip, normalise whole batches) with each
    extra augmentation of ``augment=`` (torchvision's v2 transforms called once per image)."""
    from ..data.augment import Augment
    from ..data.loaders import tensor_bundle
    from ..data.transforms import CIFAR_MEAN, CIFAR_STD

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (num_images, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 100, (num_images,), generator=g)
    rows, base = [], None
    for label, options in AUGMENT_CASES:
        data = tensor_bundle("cifar", (images, labels, images[:64], labels[:64]), 100, CIFAR_MEAN, CIFAR_STD, 4, True,
                             batch_size=batch_size, device=device, augment=Augment(**options))

        def epoch(data=data):
            for _batch in data.train:
                pass
            if device == "cuda":
                torch.cuda.synchronize()

        seconds = median_time(epoch, min_run_time)
        base = base or seconds
        rows.append({"augment": label, "device": device, "ms_per_batch": 1000 * seconds / len(data.train),
                     "images_per_s": num_images / seconds, "added_ms_per_batch": 1000 * (seconds - base) /
                     len(data.train)})
    return rows


def bench_ema(models: list[tuple[str, int, dict]], min_run_time: float, device: str = "cpu") -> list[dict]:
    """``trainer.ema_decay``'s cost per optimizer step: one ``WeightEMA.update`` (timm's ModelEmaV3: a fused lerp
    over every parameter and buffer) of each model."""
    from ..engine.ema import WeightEMA
    from ..models import count_parameters, create_model

    rows = []
    for name, num_classes, options in models:
        model = create_model(name, num_classes, **options).to(device)
        ema = WeightEMA(model, 0.9998)

        def update(ema=ema):
            ema.update()
            if device == "cuda":
                torch.cuda.synchronize()

        rows.append({"model": name, "device": device, "params": count_parameters(model),
                     "ms_per_update": 1000 * median_time(update, min_run_time)})
    return rows
