"""ImageNet decoded and augmented on the training device (``dataset.pipeline=device``).

The DataLoader workers only read each file's bytes (``EncodedFolder``); the main process decodes a
whole batch on the device and augments it there as one batch:

- decode: ``torchvision.io.decode_jpeg`` on CUDA (nvJPEG, batched) for JPEG files; whatever the device
  decoder refuses, and every file that is not a JPEG whatever its name (ImageNet has a PNG saved as
  ``.JPEG``), goes through torchvision's CPU decoder (``decode_image``: CMYK and grayscale JPEGs and PNGs
  become RGB, pixel for pixel as PIL's ``convert("RGB")``). A file no decoder reads is named in one
  ``DataError`` line. Without a GPU the same code decodes on the CPU.
- training (the official train.py's transforms, as distributions): RandomResizedCrop 224 (scale
  0.08–1, ratio 3/4–4/3, ten tries then the centre crop, as torchvision), bilinear resize with
  antialiasing of the uint8 crop, rounded to uint8 as PIL does (``torchvision.transforms.v2.functional``),
  horizontal flip p = 0.5, ColorJitter 0.4/0.4/0.4 (factors uniform in [0.6, 1.4], the three adjustments
  in a random order per image, torchvision's blend formulas), AlexNet's PCA lighting noise (std 0.1), normalisation;
- evaluation: resize the shorter side to 256, centre crop 224, normalise.

Every random draw is made on the CPU from a generator seeded by (seed, epoch, rank, step), so a run
resumed mid-epoch augments the rest of the epoch exactly as the uninterrupted run; the per-(seed, epoch)
order is the sampler's, as for the PIL pipeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision import datasets
from torchvision.io import ImageReadMode, decode_image, decode_jpeg
from torchvision.transforms.v2 import functional as TF

from ..errors import DataError
from .augment import step_seed
from .loaders import DeviceLoader
from .transforms import IMAGENET_MEAN, IMAGENET_PCA_EIGVAL, IMAGENET_PCA_EIGVEC, IMAGENET_STD

JPEG_MAGIC = b"\xff\xd8\xff"
SCALE, RATIO = (0.08, 1.0), (3 / 4, 4 / 3)  # torchvision's RandomResizedCrop defaults (the official code's)
JITTER = 0.4  # ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4)
LIGHTING_STD = 0.1


def read_bytes(path: str) -> Tensor:
    """A file's bytes as a 1-D uint8 tensor (what a worker does: no decoding)."""
    with open(path, "rb") as f:
        return torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)


class EncodedFolder(datasets.ImageFolder):
    """An ImageFolder whose samples are (encoded bytes, label, index): the worker reads, nothing more."""

    def __init__(self, root: str):
        super().__init__(root, allow_empty=False)  # lists the files; nothing is opened here

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        return read_bytes(path), target, index


def collate_encoded(batch):
    """A batch of files of different lengths: (list of byte tensors, labels, indices)."""
    data, targets, indices = zip(*batch)
    return list(data), torch.tensor(targets), torch.tensor(indices)


def is_jpeg(data: Tensor) -> bool:
    return data.numel() >= 3 and bytes(data[:3].tolist()) == JPEG_MAGIC


def decode_batch(data: list[Tensor], paths: list[str], device: torch.device, batched: bool | None = None
                 ) -> list[Tensor]:
    """Decode each file to a uint8 RGB tensor (3, H, W) on ``device``: JPEGs in one batched ``decode_jpeg``
    call (``batched``; by default on CUDA, nvJPEG), the rest and what that call refuses one by one on the
    CPU. ``paths`` name the files for the error line."""
    device = torch.device(device)
    out: list[Tensor | None] = [None] * len(data)
    if device.type == "cuda" if batched is None else batched:
        jpegs = [i for i, d in enumerate(data) if is_jpeg(d)]
        if jpegs:
            try:
                decoded = decode_jpeg([data[i] for i in jpegs], mode=ImageReadMode.RGB, device=device)
                for i, image in zip(jpegs, decoded):
                    out[i] = image
            except RuntimeError:  # one file the device decoder refuses fails the batch: decode one by one
                for i in jpegs:
                    try:
                        out[i] = decode_jpeg(data[i], mode=ImageReadMode.RGB, device=device)
                    except RuntimeError:
                        pass
    for i, image in enumerate(out):
        if image is None:
            try:
                out[i] = decode_image(data[i], mode=ImageReadMode.RGB).to(device, non_blocking=True)
            except RuntimeError:
                raise DataError("dataset.root", problem=f"{paths[i]} is not a readable image: remove or replace it"
                                ) from None
    return out


# --- the random draws, on the CPU ---------------------------------------------------------------------------
@dataclass
class TrainDraws:
    """One batch's augmentation: crop boxes (top, left, height, width), flips, jitter factors
    (brightness, contrast, saturation), each image's order of the three adjustments, lighting α."""

    boxes: Tensor  # (N, 4) long
    flips: Tensor  # (N,) bool
    factors: Tensor  # (N, 3)
    order: Tensor  # (N, 3) long: a permutation of 0, 1, 2 per image
    lighting: Tensor  # (N, 3)


def draw_crops(sizes: Tensor, generator: torch.Generator, attempts: int = 10) -> Tensor:
    """RandomResizedCrop's boxes for images of ``sizes`` (N, 2) = (height, width), vectorised: per image up
    to ten tries of area ~ U(0.08, 1)·HW and log-ratio ~ U(log 3/4, log 4/3), the first that fits with a
    uniform position; else the centre crop at the nearest allowed ratio (torchvision's ``get_params``)."""
    n = sizes.shape[0]
    height, width = sizes[:, 0:1].double(), sizes[:, 1:2].double()
    area = height * width * torch.empty(n, attempts, dtype=torch.float64).uniform_(*SCALE, generator=generator)
    log_ratio = torch.empty(n, attempts, dtype=torch.float64).uniform_(math.log(RATIO[0]), math.log(RATIO[1]),
                                                                       generator=generator)
    ratio = torch.exp(log_ratio)
    w = torch.round(torch.sqrt(area * ratio))
    h = torch.round(torch.sqrt(area / ratio))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.where(fits.any(1), fits.double().argmax(1), torch.full((n,), -1, dtype=torch.long))
    position = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    found = first >= 0
    pick = first.clamp(min=0).view(n, 1)
    h_try, w_try = h.gather(1, pick).squeeze(1), w.gather(1, pick).squeeze(1)
    H, W = height.squeeze(1), width.squeeze(1)
    # the fall-back: the whole image, cut to the nearest ratio in [3/4, 4/3], centred
    in_ratio = W / H
    w_fb = torch.where(in_ratio < RATIO[0], W, torch.where(in_ratio > RATIO[1], torch.round(H * RATIO[1]), W))
    h_fb = torch.where(in_ratio < RATIO[0], torch.round(W / RATIO[0]), H)
    h_crop, w_crop = torch.where(found, h_try, h_fb), torch.where(found, w_try, w_fb)
    top = torch.where(found, torch.floor(position[:, 0] * (H - h_crop + 1)), torch.floor((H - h_crop) / 2))
    left = torch.where(found, torch.floor(position[:, 1] * (W - w_crop + 1)), torch.floor((W - w_crop) / 2))
    return torch.stack([top, left, h_crop, w_crop], 1).long()


def draw_train(sizes: Tensor, generator: torch.Generator) -> TrainDraws:
    n = sizes.shape[0]
    boxes = draw_crops(sizes, generator)
    flips = torch.rand(n, generator=generator) < 0.5
    factors = torch.empty(n, 3).uniform_(1 - JITTER, 1 + JITTER, generator=generator)
    order = torch.rand(n, 3, generator=generator).argsort(1)
    lighting = torch.randn(n, 3, generator=generator) * LIGHTING_STD
    return TrainDraws(boxes, flips, factors, order, lighting)


def step_generator(seed: int, epoch: int, rank: int, step: int) -> torch.Generator:
    """The generator of one batch's augmentation: a function of (seed, epoch, rank, step) only."""
    return torch.Generator().manual_seed(step_seed(seed, epoch, rank, step))


# --- applying them, on the device -----------------------------------------------------------------------------
def color_jitter(x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """Brightness, contrast and saturation with per-image factors, in each image's own order, on a
    batch in [0, 1]: torchvision's formulas (a blend with black, the mean grey, the grey image; clamped),
    one ``lerp`` per position for the whole batch."""
    n = x.shape[0]
    factors = factors.to(x.device, x.dtype)
    order = order.to(x.device)
    for position in range(3):
        op = order[:, position].view(n, 1, 1, 1)
        f = factors.gather(1, order[:, position:position + 1]).view(n, 1, 1, 1)
        gray = (0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)  # torchvision's rgb_to_grayscale
        other = torch.where(op == 0, torch.zeros_like(gray),  # brightness: towards black
                            torch.where(op == 1, gray.mean((1, 2, 3), keepdim=True), gray))  # contrast, saturation
        x = torch.lerp(other.expand_as(x), x, f).clamp_(0, 1)  # f·x + (1 − f)·other
    return x


def lighting(x: Tensor, alpha: Tensor) -> Tensor:
    """AlexNet's PCA noise: + eigvec · (α ∘ eigval) per image."""
    eigval = torch.tensor(IMAGENET_PCA_EIGVAL, dtype=x.dtype, device=x.device)
    eigvec = torch.tensor(IMAGENET_PCA_EIGVEC, dtype=x.dtype, device=x.device)
    rgb = (alpha.to(x.device, x.dtype) * eigval) @ eigvec.T  # (N, 3)
    return x + rgb.view(-1, 3, 1, 1)


def normalize_imagenet(x: Tensor) -> Tensor:
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def train_batch(images: list[Tensor], draws: TrainDraws, size: int, augment=None, seed: int = 0) -> Tensor:
    """The official training augmentation applied to decoded uint8 images (on their device); ``augment``
    (``data.augment.Augment``, not the paper's) adds its policy after the flip, its erasing at the end."""
    crops = []
    for image, (top, left, h, w), flip in zip(images, draws.boxes.tolist(), draws.flips.tolist()):
        crop = TF.resize(image[:, top:top + h, left:left + w].unsqueeze(0), [size, size], antialias=True)
        crops.append(crop.flip(-1) if flip else crop)  # = resized_crop (cropped first), then the flip
    x = torch.cat(crops)
    if augment is not None:
        x = augment.batch(x, "policy", seed)
    x = x.float().div_(255.0)  # uint8 resized and rounded, as PIL does
    x = color_jitter(x, draws.factors, draws.order)
    x = normalize_imagenet(lighting(x, draws.lighting))
    return x if augment is None else augment.batch(x, "erasing", seed)


def eval_batch(images: list[Tensor], size: int, resize: int) -> Tensor:
    """Resize the shorter side to ``resize`` (antialiased bilinear), centre crop ``size``, normalise."""
    out = [TF.center_crop(TF.resize(image.unsqueeze(0), [resize], antialias=True), [size, size]) for image in images]
    return normalize_imagenet(torch.cat(out).float() / 255.0)


# --- the loader -----------------------------------------------------------------------------------------------
class DecodedLoader(DeviceLoader):
    """``DeviceLoader`` over ``EncodedFolder``: workers read bytes; each batch is decoded and augmented on the
    device here (training: ``draw_train`` from ``step_generator``; evaluation: ``eval_batch``)."""

    def __init__(self, loader, sampler, device, paths, train: bool, image_size: int, resize: int, seed: int,
                 rank: int, augment=None):
        super().__init__(loader, sampler, device, paths)
        self.train, self.image_size, self.resize, self.seed, self.rank = train, image_size, resize, seed, rank
        self.augment = augment if train and augment is not None and augment.active else None
        self.epoch, self.start_step = 0, 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        super().set_epoch(epoch, start_step)
        self.epoch, self.start_step = epoch, start_step

    def transform(self, data: list[Tensor], indices: Tensor, step: int) -> Tensor:
        images = decode_batch(data, [self.paths[i] for i in indices.tolist()], self.device)
        if not self.train:
            return eval_batch(images, self.image_size, self.resize)
        sizes = torch.tensor([list(image.shape[-2:]) for image in images])
        return train_batch(images, draw_train(sizes, step_generator(self.seed, self.epoch, self.rank, step)),
                           self.image_size, self.augment, step_seed(self.seed, self.epoch, self.rank, step))

    def sample(self, index: int) -> tuple:
        data, target, _ = self.loader.dataset[index]
        return self.transform([data], torch.tensor([index]), step=0)[0], target

    def __iter__(self):
        for step, (data, targets, indices) in enumerate(self.loader, start=self.start_step):
            yield self.transform(data, indices, step), targets.to(self.device, non_blocking=True)
