"""Bench section "saliency" (``python -m cutmix_repro.bench --only saliency``): how often SaliencyMix's saliency
peak lands on the salient object, for each ``regularizer.saliency_input`` (``authors``: the normalised tensor as
their ``saliency_bbox`` hands it to OpenCV; ``pixels``: 8-bit pixels) beside a uniformly random centre, which is
what CutMix draws.

- Constructed images (32×32, CIFAR's size): a flat background of a random colour with one bright Gaussian blob
  (σ 1.5–3 pixels) at a random place at least 5 pixels from the border, normalised as the authors' CIFAR code
  (mean 125.3/123.0/113.9, std 63.0/62.1/66.7). A hit: the peak within 4 pixels of the blob's centre.
- Smooth random images (Gaussian noise blurred by σ = 2): how far apart the two inputs' peaks land.
- A CUB-200-2011 folder (``--saliency-cub ROOT``, where given): the test images at 224×224 (resized whole),
  ImageNet-normalised; a hit: the peak inside the bird's box.
- Real objects (where Fashion-MNIST's files are here): the test canvases of ``dataset=fashion_mnist_boxes`` (its
  config's canvas, scales, noise background and seed), normalised as training normalises them; a hit: the peak
  inside the object's box; each rate with its exact 95% (Clopper–Pearson) interval.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

AUTHORS_CIFAR_MEAN = torch.tensor([125.3, 123.0, 113.9]).view(3, 1, 1) / 255
AUTHORS_CIFAR_STD = torch.tensor([63.0, 62.1, 66.7]).view(3, 1, 1) / 255
NEAR = 4  # pixels: a peak this close to the blob's centre is on it


def blob_images(count: int, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """(``count`` 8-bit images C×H×W, each a flat background with one bright blob; the blobs' centres (row, col))."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images, centres = [], []
    for _ in range(count):
        background = rng.uniform(20, 140, 3)
        cy, cx = rng.uniform(5, size - 5, 2)
        sigma = rng.uniform(1.5, 3.0)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        colour = rng.uniform(100, 115, 3)
        image = background[:, None, None] + colour[:, None, None] * blob[None]
        images.append(np.clip(image, 0, 255).round())
        centres.append((cy, cx))
    return torch.from_numpy(np.stack(images)).to(torch.uint8), np.array(centres)


def smooth_images(count: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(count, 3, size + 12, size + 12, generator=g)
    k = torch.exp(-torch.arange(-6, 7).float() ** 2 / 8)
    k = (k / k.sum()).view(1, 1, 1, -1)
    smooth = F.conv2d(F.conv2d(noise.reshape(-1, 1, size + 12, size + 12), k), k.transpose(2, 3))
    smooth = smooth.view(count, 3, size, size)
    smooth = (smooth - smooth.amin((1, 2, 3), keepdim=True)) / (smooth.amax((1, 2, 3), keepdim=True)
                                                               - smooth.amin((1, 2, 3), keepdim=True))
    return (smooth * 255).round().to(torch.uint8)


def peaks(images: torch.Tensor, saliency_input: str, mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    """Each normalised image's saliency peak (row, col), as SaliencyMix with ``saliency_input`` finds it."""
    from ..regularizers.saliencymix import authors_saliency, opencv_fine_grained, peak

    saliency = authors_saliency if saliency_input == "authors" else opencv_fine_grained
    normalised = (images.float() / 255 - mean) / std
    return np.array([peak(saliency(image)) for image in normalised])


def bench_saliency(count: int = 200, cub_root: str | None = None, seed: int = 0, canvases: int = 2000) -> dict:
    from ..regularizers.saliencymix import SALIENCY_INPUTS

    images, centres = blob_images(count, seed=seed)
    rng = np.random.default_rng(seed + 1)
    random_centres = rng.integers(0, 32, (count, 2))
    rows = []
    for mode in (*SALIENCY_INPUTS, "random"):
        found = random_centres if mode == "random" else peaks(images, mode, AUTHORS_CIFAR_MEAN, AUTHORS_CIFAR_STD)
        near = np.hypot(*(found - centres).T) <= NEAR
        rows.append({"input": mode, "images": count, "on_object": int(near.sum()), "rate": float(near.mean())})
    smooth = smooth_images(count, seed=seed)
    a, b = (peaks(smooth, m, AUTHORS_CIFAR_MEAN, AUTHORS_CIFAR_STD) for m in SALIENCY_INPUTS)
    apart = np.hypot(*(a - b).T)
    result = {"blobs": rows, "smooth": {"images": count, "same_peak": int((apart == 0).sum()),
                                         "median_apart": float(np.median(apart))}}
    if cub_root:
        result["cub"] = cub_hits(cub_root)
    result["canvas"] = canvas_hits(canvases)
    return result


def canvas_hits(count: int = 2000, overrides: tuple[str, ...] = ()) -> list[dict] | str:
    """On ``count`` test canvases of ``dataset=fashion_mnist_boxes`` (Fashion-MNIST's real photographs with their
    exact boxes): how often each input's peak, and a uniformly random point, lands inside the object's box, with an
    exact 95% interval; or why not measured (the files are not here)."""
    from scipy.stats import binomtest

    from ..config import build, compose
    from ..errors import DataError
    from ..regularizers.saliencymix import SALIENCY_INPUTS

    cfg = compose(["dataset=fashion_mnist_boxes", f"dataset.test_subset={count}", "dataset.train_subset=1000",
                   *overrides])
    try:
        data = build(cfg.dataset, "dataset", batch_size=256)
    except DataError as err:
        return f"not measured: {err}"
    images, boxes = data.val.images.cpu(), data.val.boxes[:, 0].cpu().numpy()  # x1, y1, x2, y2 (ends exclusive)
    mean, std = torch.tensor(data.mean).view(-1, 1, 1), torch.tensor(data.std).view(-1, 1, 1)
    rng = np.random.default_rng(0)
    rows = []
    for mode in (*SALIENCY_INPUTS, "random"):
        found = rng.integers(0, images.shape[-1], (len(images), 2)) if mode == "random" else \
            peaks(images, mode, mean, std)
        inside = ((found[:, 1] >= boxes[:, 0]) & (found[:, 1] < boxes[:, 2]) & (found[:, 0] >= boxes[:, 1])
                  & (found[:, 0] < boxes[:, 3]))
        interval = binomtest(int(inside.sum()), len(inside)).proportion_ci(0.95, method="exact")
        rows.append({"input": mode, "images": len(images), "on_object": int(inside.sum()),
                     "rate": float(inside.mean()), "low": float(interval.low), "high": float(interval.high)})
    area = float(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).mean() / images.shape[-1] ** 2)
    rows.append({"input": "(the boxes' mean share of the canvas)", "images": len(images), "on_object": None,
                 "rate": area, "low": None, "high": None})
    return rows


def cub_hits(root: str, size: int = 224, limit: int = 500) -> list[dict]:
    """On a CUB-200-2011 folder's test images (at most ``limit``): how often each input's peak, and a random
    centre, lands inside the bird's box."""
    from PIL import Image

    from ..data.wsol import read_cub
    from ..regularizers.saliencymix import SALIENCY_INPUTS

    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    records = read_cub(Path(root))[2][:limit]  # the test images, with their boxes (x1, y1, x2, y2)
    images, boxes = [], []
    for path, _, box, (width, height) in records:
        x1, y1, x2, y2 = box[0].tolist()
        with Image.open(path) as img:
            images.append(torch.from_numpy(np.array(img.convert("RGB").resize((size, size)))).permute(2, 0, 1))
        boxes.append((y1 * size / height, y2 * size / height, x1 * size / width, x2 * size / width))
    images, boxes = torch.stack(images), np.array(boxes)
    rng = np.random.default_rng(0)
    rows = []
    for mode in (*SALIENCY_INPUTS, "random"):
        found = rng.integers(0, size, (len(images), 2)) if mode == "random" else peaks(images, mode, mean, std)
        inside = ((found[:, 0] >= boxes[:, 0]) & (found[:, 0] < boxes[:, 1]) & (found[:, 1] >= boxes[:, 2])
                  & (found[:, 1] < boxes[:, 3]))
        rows.append({"input": mode, "images": len(images), "on_object": int(inside.sum()),
                     "rate": float(inside.mean())})
    return rows


def report_lines(result: dict) -> list[str]:
    from .common import table

    columns = [("input", "OpenCV is handed", ""), ("images", "images", "d"), ("on_object", "peak on the object", "d"),
               ("rate", "rate", ".1%")]
    s = result["smooth"]
    lines = ["## 13. SaliencyMix: how often the saliency peak lands on the object", "",
             *table(result["blobs"], columns), "",
             "Constructed 32×32 images, a flat background with one bright blob, normalised as the authors' CIFAR "
             f"code; on the object: the peak within {NEAR} pixels of the blob's centre. `authors`: the normalised "
             "tensor as their `saliency_bbox` hands it to OpenCV; `pixels`: 8-bit pixels; `random`: a uniformly "
             "random centre (CutMix's).",
             "", f"On {s['images']} smooth random images the two inputs' peaks coincide in {s['same_peak']}; median "
             f"distance {s['median_apart']:.1f} pixels.", ""]
    if result.get("cub"):
        lines += ["CUB-200-2011 test images (224×224, ImageNet-normalised), peak inside the bird's box:", "",
                  *table(result["cub"], columns), ""]
    canvas = result.get("canvas")
    if isinstance(canvas, str):
        lines += [f"Real objects (`dataset=fashion_mnist_boxes`): {canvas}", ""]
    elif canvas:
        rows = [{**r, "interval": "—" if r["low"] is None else f"{r['low']:.1%} – {r['high']:.1%}",
                 "on_object": "—" if r["on_object"] is None else r["on_object"]} for r in canvas]
        lines += ["Real objects: Fashion-MNIST's test photographs on `dataset=fashion_mnist_boxes` canvases (48×48, "
                  "noise background, the config's defaults), normalised as training normalises them; peak inside "
                  "the object's exact box, with an exact (Clopper–Pearson) 95% interval:", "",
                  *table(rows, [*columns[:2], ("on_object", "peak on the object", ""), ("rate", "rate", ".1%"),
                                ("interval", "95% interval", "")]), ""]
    return lines
