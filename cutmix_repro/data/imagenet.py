"""ImageNet from an ImageFolder with ``train/`` and ``val/`` (one folder per class in each),
with the official augmentation, through a DataLoader with workers, pinned memory, persistent
workers and prefetching. Batches arrive on the device (non-blocking copies)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Sampler
from torchvision import datasets

from .bundle import DataBundle, DataError
from .transforms import imagenet_eval_transform, imagenet_train_transform


class ShardSampler(Sampler[int]):
    """Each rank's share of a (shuffled, per-epoch seeded) permutation.

    Training: equal shards (the last N mod world images sit out the epoch) so every rank
    takes the same number of steps. Evaluation: rank::world, every image exactly once."""

    def __init__(self, size: int, train: bool, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.size, self.train, self.seed = size, train, seed
        self.rank, self.world_size, self.epoch, self.skip = rank, world_size, 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __iter__(self):
        if not self.train:
            return iter(range(self.rank, self.size, self.world_size))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.size, generator=g)
        usable = self.size - self.size % self.world_size
        return iter(perm[:usable][self.rank :: self.world_size][self.skip :].tolist())

    def __len__(self) -> int:
        if self.train:
            return self.size // self.world_size - self.skip
        return len(range(self.rank, self.size, self.world_size))


log = logging.getLogger("cutmix_repro")


def load_rgb(path: str) -> Image.Image:
    """ImageFolder's loader, with one clear error naming a file that is not a readable image."""
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"dataset.root: {path} is not a readable image ({type(err).__name__}); "
                        "remove or replace it") from None


class DeviceLoader:
    """A DataLoader whose batches are moved to the device; same interface as TensorLoader."""

    def __init__(self, loader: DataLoader, sampler: ShardSampler, device):
        self.loader, self.sampler, self.device = loader, sampler, torch.device(device)

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.sampler.set_epoch(epoch, start_step * self.loader.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self.sampler) + self.sampler.skip

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        try:
            for images, targets in self.loader:
                yield images.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)
        except DataError as err:  # from a worker: keep the original one-line message
            lines = [line for line in str(err).splitlines() if "DataError: " in line]
            raise DataError(lines[-1].split("DataError: ", 1)[1] if lines else str(err)) from None


def _image_folder(path: Path, transform, key: str) -> datasets.ImageFolder:
    if not path.is_dir():
        raise DataError(f"{key}={str(path.parent)!r} is invalid: no folder {path.name}/ there "
                        "(ImageNet needs train/ and val/, one sub-folder per class)")
    try:
        ds = datasets.ImageFolder(str(path), transform=transform, loader=load_rgb, allow_empty=False)
    except FileNotFoundError as err:  # an empty class folder, or no class folders at all
        raise DataError(f"{key}={str(path.parent)!r}: {path.name}/ is unusable: {err}") from None
    files = sum(1 for f in path.rglob("*") if f.is_file())
    if files > len(ds.samples):
        log.warning("%s: ignored %d files that are not images by their extension", path, files - len(ds.samples))
    return ds


def imagenet(
    root: str = "data/imagenet",
    image_size: int = 224,
    resize: int = 256,
    num_workers: int = 8,
    prefetch_factor: int = 4,
    *,
    batch_size: int,
    device="cpu",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
    eval_batch_size: int | None = None,
) -> DataBundle:
    root_path = Path(root)
    train_ds = _image_folder(root_path / "train", imagenet_train_transform(image_size), "dataset.root")
    val_ds = _image_folder(root_path / "val", imagenet_eval_transform(image_size, resize), "dataset.root")
    if train_ds.classes != val_ds.classes:
        raise DataError(f"dataset.root={root!r}: train/ and val/ have different class folders")
    if world_size > len(train_ds):
        raise DataError(f"world_size={world_size} is invalid: larger than the {len(train_ds)} training images")
    on_cuda = torch.device(device).type == "cuda"

    def loader(ds, train: bool, bs: int):
        sampler = ShardSampler(len(ds), train, seed, rank, world_size)
        workers = dict(persistent_workers=True, prefetch_factor=prefetch_factor) if num_workers > 0 else {}
        dl = DataLoader(ds, batch_size=bs, sampler=sampler, num_workers=num_workers, pin_memory=on_cuda,
                        drop_last=drop_last and train, generator=torch.Generator().manual_seed(seed), **workers)
        return DeviceLoader(dl, sampler, device)

    return DataBundle(
        name="imagenet",
        train=loader(train_ds, True, batch_size),
        val=loader(val_ds, False, eval_batch_size or batch_size),
        num_classes=len(train_ds.classes),
        image_size=(image_size, image_size),
    )


__all__ = ["DeviceLoader", "ShardSampler", "imagenet"]
