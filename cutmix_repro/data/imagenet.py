"""ImageNet from an ImageFolder with ``train/`` and ``val/`` (one folder per class in each), with the
official augmentation, through a DataLoader with workers, pinned memory, persistent workers and
prefetching. Batches arrive on the device (non-blocking copies).

``pipeline``: ``pil`` = the authors' exact transforms, decoded and augmented with PIL in the workers;
``device`` = workers read bytes, decoding and augmentation run batched on the training device
(``data/decoded.py``); ``auto`` = ``device`` on CUDA, ``pil`` on the CPU."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torchvision import datasets

from ..errors import ConfigError, DataError
from .decoded import DecodedLoader, EncodedFolder, collate_encoded
from .loaders import UNREADABLE, Batching, DataBundle, device_loader, resolve_workers
from .transforms import IMAGENET_MEAN, IMAGENET_STD, imagenet_eval_transform, imagenet_train_transform

log = logging.getLogger("cutmix_repro")


class FileChecked(datasets.ImageFolder):
    """An ImageFolder that does not die in a worker on an unreadable file: it hands the loader a
    placeholder image with the target ``-1 - index``, and ``DeviceLoader`` names the file."""

    def __getitem__(self, index: int):
        try:
            return super().__getitem__(index)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            placeholder = Image.new("RGB", (8, 8))
            return self.transform(placeholder), UNREADABLE - index


PIPELINES = ("auto", "device", "pil")


def image_folder(path: Path, transform=None, encoded: bool = False) -> FileChecked | EncodedFolder:
    """The ImageFolder at ``path`` (decoded by PIL through ``transform``, or ``encoded``: bytes only)."""
    if not path.is_dir():
        raise DataError("root", str(path.parent), f"no folder {path.name}/ there (ImageNet needs train/ and val/, "
                        "one sub-folder per class)")
    try:
        ds = EncodedFolder(str(path)) if encoded else FileChecked(str(path), transform=transform, allow_empty=False)
    except FileNotFoundError as err:  # an empty class folder, or no class folders at all
        raise DataError("root", str(path.parent), f"{path.name}/ is unusable: {err}") from None
    files = sum(1 for f in path.rglob("*") if f.is_file())
    if files > len(ds.samples):
        log.warning("%s: ignored %d files that are not images by their extension", path, files - len(ds.samples))
    return ds


def imagenet(
    root: str,
    image_size: int,
    resize: int,
    num_workers: int | str,
    prefetch_factor: int,
    pipeline: str,
    **batching,
) -> DataBundle:
    """``batching``: the fields of ``Batching``; evaluation batches are as large as training ones."""
    feed = Batching(**batching)
    num_workers = resolve_workers(num_workers)
    pipeline = resolve_pipeline(pipeline, feed.device)
    root_path = Path(root)
    if pipeline == "device":
        train_ds, val_ds = (image_folder(root_path / part, encoded=True) for part in ("train", "val"))
    else:
        train_ds = image_folder(root_path / "train", imagenet_train_transform(image_size, feed.augment))
        val_ds = image_folder(root_path / "val", imagenet_eval_transform(image_size, resize))
    if train_ds.classes != val_ds.classes:
        raise DataError("root", root, "train/ and val/ have different class folders")
    if pipeline == "device":
        train, val = (decoded_loader(ds, is_train, feed, num_workers, prefetch_factor, image_size, resize)
                      for ds, is_train in ((train_ds, True), (val_ds, False)))
    else:
        train = device_loader(train_ds, True, feed, num_workers, prefetch_factor)
        val = device_loader(val_ds, False, feed, num_workers, prefetch_factor)
    return DataBundle(name="imagenet", train=train, val=val,
                      num_classes=len(train_ds.classes), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                      class_names=list(train_ds.classes))


def resolve_pipeline(pipeline: str, device) -> str:
    """``auto``: decode and augment on the device when it is a GPU, with PIL (the authors' transforms) otherwise."""
    if pipeline not in PIPELINES:
        raise ConfigError("pipeline", pipeline, "choose auto (device on CUDA, pil on the CPU), device or pil")
    if pipeline == "auto":
        return "device" if torch.device(device).type == "cuda" else "pil"
    return pipeline


def decoded_loader(dataset: EncodedFolder, train: bool, feed: Batching, num_workers: int, prefetch_factor: int,
                   image_size: int, resize: int) -> DecodedLoader:
    """The DataLoader of ``device_loader`` (workers, sampler, pinned memory) reading bytes, decoded on the device."""
    base = device_loader(dataset, train, feed, num_workers, prefetch_factor, collate_fn=collate_encoded)
    return DecodedLoader(base.loader, base.sampler, feed.device, base.paths, train, image_size, resize, feed.seed,
                         feed.rank, feed.augment)
