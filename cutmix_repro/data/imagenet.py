"""ImageNet from an ImageFolder with ``train/`` and ``val/`` (one folder per class in each), with the
official augmentation, through a DataLoader with workers, pinned memory, persistent workers and
prefetching. Batches arrive on the device (non-blocking copies)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader
from torchvision import datasets

from ..errors import ConfigError, DataError
from .loaders import UNREADABLE, Batching, DataBundle, DeviceLoader, ShardSampler
from .transforms import imagenet_eval_transform, imagenet_train_transform

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


def default_workers() -> int:
    """DataLoader workers from the CPUs this process may use, shared by the DDP ranks of its node,
    one left for the process itself (at most 16)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(16, cpus // ranks_here - 1))


def _image_folder(path: Path, transform) -> FileChecked:
    if not path.is_dir():
        raise DataError("root", str(path.parent), f"no folder {path.name}/ there (ImageNet needs train/ and val/, "
                        "one sub-folder per class)")
    try:
        ds = FileChecked(str(path), transform=transform, allow_empty=False)
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
    **batching,
) -> DataBundle:
    """``batching``: the fields of ``Batching``; evaluation batches are as large as training ones."""
    feed = Batching(**batching)
    if num_workers == "auto":
        num_workers = default_workers()
    elif not (isinstance(num_workers, int) and num_workers >= 0):
        raise ConfigError("num_workers", num_workers, "auto or a number of DataLoader workers >= 0")
    root_path = Path(root)
    train_ds = _image_folder(root_path / "train", imagenet_train_transform(image_size))
    val_ds = _image_folder(root_path / "val", imagenet_eval_transform(image_size, resize))
    if train_ds.classes != val_ds.classes:
        raise DataError("root", root, "train/ and val/ have different class folders")
    on_cuda = torch.device(feed.device).type == "cuda"

    def loader(ds: FileChecked, train: bool) -> DeviceLoader:
        sampler = ShardSampler(len(ds), train, feed)
        workers = dict(persistent_workers=True, prefetch_factor=prefetch_factor) if num_workers > 0 else {}
        dl = DataLoader(ds, batch_size=feed.batch_size, sampler=sampler, num_workers=num_workers,
                        pin_memory=on_cuda, drop_last=feed.drop_last and train,
                        generator=torch.Generator().manual_seed(feed.seed), **workers)
        return DeviceLoader(dl, sampler, feed.device, [path for path, _ in ds.samples])

    return DataBundle(name="imagenet", train=loader(train_ds, True), val=loader(val_ds, False),
                      num_classes=len(train_ds.classes))
