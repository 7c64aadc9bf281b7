"""ImageNet from an ImageFolder with ``train/`` and ``val/`` (one folder per class in each), with the
official augmentation, through a DataLoader with workers, pinned memory, persistent workers and
prefetching. Batches arrive on the device (non-blocking copies)."""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torchvision import datasets

from ..errors import DataError
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


def image_folder(path: Path, transform) -> FileChecked:
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
    num_workers = resolve_workers(num_workers)
    root_path = Path(root)
    train_ds = image_folder(root_path / "train", imagenet_train_transform(image_size))
    val_ds = image_folder(root_path / "val", imagenet_eval_transform(image_size, resize))
    if train_ds.classes != val_ds.classes:
        raise DataError("root", root, "train/ and val/ have different class folders")
    train = device_loader(train_ds, True, feed, num_workers, prefetch_factor)
    val = device_loader(val_ds, False, feed, num_workers, prefetch_factor)
    return DataBundle(name="imagenet", train=train, val=val,
                      num_classes=len(train_ds.classes), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                      class_names=list(train_ds.classes))
