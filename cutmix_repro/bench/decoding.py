"""Section 6: ImageNet input: host CPU time per training image of the PIL pipeline against the device
pipeline, and each one's images/s."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _write_jpegs(root: Path, count: int, classes: int = 4) -> list[str]:
    """An ImageFolder of ``count`` JPEGs of 500×375 (ImageNet's most common size), photo-like content
    (smooth colours plus grain) at quality 90: about 100 KB each, as ImageNet's."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:375, 0:500] / 500
    paths = []
    for i in range(count):
        f = rng.uniform(0.5, 3, (3, 3))
        smooth = np.stack([np.sin(2 * np.pi * (a * yy + b * xx) + c) for a, b, c in f], -1)
        pixels = np.clip((smooth + 1) * 110 + rng.normal(0, 12, (375, 500, 3)), 0, 255).astype(np.uint8)
        folder = root / "train" / f"n{i % classes:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img_{i}.JPEG"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(str(path))
    return paths


def bench_decoding(count: int, batch_size: int, device: str = "cpu") -> dict:
    """Host CPU time per training image (``time.process_time`` of this process, one thread): the PIL pipeline
    (open, decode, the official transforms) vs what the device pipeline leaves to the host (read the bytes,
    draw the augmentation; decoding and augmenting run on the device, on a GPU). And the throughput of each
    pipeline run entirely on ``device`` (on the CPU: torchvision's CPU decoder and the same tensor code)."""
    from PIL import Image

    from ..data.decoded import decode_batch, draw_train, read_bytes, train_batch
    from ..data.transforms import imagenet_train_transform

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = _write_jpegs(Path(tmp), count)
            megabytes = sum(os.path.getsize(p) for p in paths) / len(paths) / 1e6
            pil = imagenet_train_transform(224)
            started, cpu = time.perf_counter(), time.process_time()
            for path in paths:
                with Image.open(path) as image:
                    pil(image.convert("RGB"))
            pil_cpu, pil_wall = (time.process_time() - cpu) / count, (time.perf_counter() - started) / count

            batches = [paths[i:i + batch_size] for i in range(0, count, batch_size)]
            generator = torch.Generator().manual_seed(0)
            cpu = time.process_time()
            encoded = []
            for batch in batches:  # the host's share: read bytes, draw the augmentation (sizes from the headers)
                data = [read_bytes(p) for p in batch]
                sizes = torch.tensor([Image.open(p).size[::-1] for p in batch])
                draw_train(sizes, generator)
                encoded.append(data)
            host_cpu = (time.process_time() - cpu) / count

            dev = torch.device(device)
            for batch, data in zip(batches[:1], encoded):  # warm-up: the decoder's handles and kernels load once
                images = decode_batch(data, batch, dev)
                train_batch(images, draw_train(torch.tensor([list(i.shape[-2:]) for i in images]), generator), 224)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            started, cpu = time.perf_counter(), time.process_time()
            for batch, data in zip(batches, encoded):
                images = decode_batch(data, batch, dev)
                sizes = torch.tensor([list(image.shape[-2:]) for image in images])
                train_batch(images, draw_train(sizes, generator), 224)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            tensor_wall, tensor_cpu = (time.perf_counter() - started) / count, (time.process_time() - cpu) / count
    finally:
        torch.set_num_threads(threads)
    return {"images": count, "batch_size": batch_size, "device": device, "jpeg_mb": megabytes,
            "pil_cpu_ms": 1e3 * pil_cpu, "device_pipeline_host_cpu_ms": 1e3 * host_cpu,
            "host_cpu_ratio": host_cpu / pil_cpu, "pil_images_per_s": 1 / pil_wall,
            "tensor_images_per_s": 1 / tensor_wall, "tensor_cpu_ms": 1e3 * tensor_cpu,
            "tensor_over_pil": pil_wall / tensor_wall}
