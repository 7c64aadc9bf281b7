"""The loaders every data set factory hands to the trainer: batches of normalised float images on
the training device, one pass per epoch, the same order and augmentation for the same (seed, epoch).

- ``TensorLoader``: a data set held as one uint8 tensor on the training device, cropped, flipped and
  normalised a whole batch at a time (CIFAR, digits, synthetic).
- ``DeviceLoader``: a ``torch.utils.data.DataLoader`` over files (ImageNet), batches moved to the device.

Both draw each epoch's order from ``shard_indices``: one permutation seeded by (seed, epoch), every
image exactly once on one process; the last batch is partial unless ``drop_last``. Under DDP each rank
takes an equal, disjoint share (the N mod world images left over sit out that epoch); evaluation
shards are rank::world, so every test image is counted exactly once.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from ..errors import ConfigError, DataError
from .augment import Augment, step_seed
from .transforms import crop_flip_padded, draw_crop_flip, normalize


@dataclass
class DataBundle:
    """What every data set factory returns to the trainer: the loaders, and how to show an image
    (the normalisation to undo, the class names if the data set has them)."""

    name: str
    train: TensorLoader | DeviceLoader
    val: TensorLoader | DeviceLoader
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: list[str] | None = None
    in_chans: int = 3  # channels of an image: what the model's first convolution takes

    def class_name(self, index: int) -> str:
        return self.class_names[index] if self.class_names else f"class {index}"


@dataclass(frozen=True)
class Batching:
    """How batches are drawn, the same for every data set: what the trainer passes to each factory
    (``batch_size`` per process, the training device, the seed of the data order, this process's share)."""

    batch_size: int
    device: torch.device | str = "cpu"
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    drop_last: bool = False
    augment: Augment | None = None  # augment=...: torchvision's policies added to training batches (not the paper's)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of one epoch's order and augmentation: a function of (seed, epoch) only."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def shard_indices(size: int, train: bool, generator: torch.Generator | None, rank: int, world_size: int) -> Tensor:
    """This rank's indices of a pass: a permuted equal share (training) or rank::world (evaluation)."""
    if not train:
        return torch.arange(rank, size, world_size)
    perm = torch.randperm(size, generator=generator)
    usable = size - size % world_size
    return perm[:usable][rank::world_size]


class TensorLoader:
    """``boxes`` (N, G, 4), if given, come with each test batch as a third tensor (localization data)."""

    def __init__(self, images: Tensor, targets: Tensor, batching: Batching, mean, std, train: bool = True,
                 padding: int = 4, hflip: bool = True, boxes: Tensor | None = None):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise TypeError("images must be a uint8 tensor of shape (N, C, H, W)")
        self.device = torch.device(batching.device)
        self.height, self.width = images.shape[-2:]
        if train and padding > 0:  # pad once, not every batch
            images = F.pad(images, (padding, padding, padding, padding))
        self.images = images.to(self.device)
        self.targets = targets.long().to(self.device)
        self.boxes = None if boxes is None else boxes.to(self.device)
        self.batch_size, self.train = batching.batch_size, train
        self.padding, self.hflip = padding, hflip
        self.seed, self.rank, self.world_size = batching.seed, batching.rank, batching.world_size
        self.drop_last = batching.drop_last
        self.augment = batching.augment if train and batching.augment and batching.augment.active else None
        c = images.shape[1]
        self.mean = torch.tensor(mean, device=self.device).view(1, c, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, c, 1, 1)
        self.epoch, self.start_step = 0, 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Draw epoch ``epoch``'s order and augmentation; skip its first ``start_step`` batches
        (a run resumed mid-epoch continues exactly where it stopped)."""
        self.epoch, self.start_step = epoch, start_step

    @property
    def dataset_size(self) -> int:
        """Images in the data set, all ranks together."""
        return len(self.images)

    @property
    def labels(self) -> Tensor:
        """Every image's label, in the data set's order (on the CPU)."""
        return self.targets.cpu()

    @property
    def num_samples(self) -> int:
        """Images this rank sees per pass."""
        n = len(self.images)
        return n // self.world_size if self.train else len(range(self.rank, n, self.world_size))

    def __len__(self) -> int:
        return self._num_batches() - self.start_step

    def _num_batches(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last and self.train else math.ceil(n / self.batch_size)

    def sample(self, index: int) -> tuple:
        """Image ``index`` of the data set, unaugmented and normalised (C, H, W), its label, and its boxes
        (G, 4) if the data set has them."""
        image = self.images[index : index + 1]
        if self.train and self.padding > 0:
            p = self.padding
            image = image[:, :, p : p + self.height, p : p + self.width]
        boxes = () if self.boxes is None else (self.boxes[index],)
        return normalize(image, self.mean, self.std)[0], int(self.targets[index]), *boxes

    def __iter__(self):
        generator = epoch_generator(self.seed, self.epoch)
        indices = shard_indices(len(self.images), self.train, generator, self.rank, self.world_size)
        if self.train:
            offsets, flips = draw_crop_flip(len(indices), self.padding, self.hflip, generator)
            offsets, flips = offsets.to(self.device), flips.to(self.device)
        indices = indices.to(self.device)
        for step in range(self.start_step, self._num_batches()):
            sl = slice(step * self.batch_size, (step + 1) * self.batch_size)
            idx = indices[sl]
            images = self.images[idx]
            if self.train:
                images = crop_flip_padded(images, offsets[sl], flips[sl], self.height, self.width)
                if self.augment is None:  # the paper's recipe
                    yield normalize(images, self.mean, self.std), self.targets[idx]
                    continue
                seed = step_seed(self.seed, self.epoch, self.rank, step)
                images = normalize(self.augment.batch(images, "policy", seed), self.mean, self.std)
                yield self.augment.batch(images, "erasing", seed), self.targets[idx]
            elif self.boxes is None:
                yield normalize(images, self.mean, self.std), self.targets[idx]
            else:
                yield normalize(images, self.mean, self.std), self.targets[idx], self.boxes[idx]


def tensor_bundle(
    name: str,
    splits: tuple[Tensor, Tensor, Tensor, Tensor],
    num_classes: int,
    mean,
    std,
    padding: int,
    hflip: bool,
    class_names: list[str] | None = None,
    val_boxes: Tensor | None = None,
    **batching,
) -> DataBundle:
    """A ``DataBundle`` of two ``TensorLoader``s: augmented training batches and raw test batches
    (of max(batch_size, 256)), with their boxes if given. ``batching``: the fields of ``Batching``."""
    train_x, train_y, test_x, test_y = splits
    train = Batching(**batching)
    val = dataclasses.replace(train, batch_size=max(train.batch_size, 256), drop_last=False)
    return DataBundle(
        name=name,
        train=TensorLoader(train_x, train_y, train, mean, std, train=True, padding=padding, hflip=hflip),
        val=TensorLoader(test_x, test_y, val, mean, std, train=False, boxes=val_boxes),
        num_classes=num_classes,
        mean=tuple(mean),
        std=tuple(std),
        class_names=class_names,
        in_chans=train_x.shape[1],
    )


class ShardSampler(Sampler[int]):
    """``shard_indices`` as a DataLoader sampler, skipping the batches a resumed epoch already did."""

    def __init__(self, size: int, train: bool, batching: Batching):
        self.size, self.train, self.seed = size, train, batching.seed
        self.rank, self.world_size, self.epoch, self.skip = batching.rank, batching.world_size, 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __iter__(self):
        generator = epoch_generator(self.seed, self.epoch) if self.train else None
        indices = shard_indices(self.size, self.train, generator, self.rank, self.world_size)
        return iter(indices[self.skip :].tolist())

    def __len__(self) -> int:
        if self.train:
            return self.size // self.world_size - self.skip
        return len(range(self.rank, self.size, self.world_size))


UNREADABLE = -1  # targets at or below this mark samples a worker could not read: -1 - index


class DeviceLoader:
    """A DataLoader whose batches are moved to the device (non-blocking); same interface as
    ``TensorLoader``. A sample whose file could not be read arrives with the target ``-1 - index``
    (see ``FileChecked``), and the file is named here, in the main process, as one ``DataError``."""

    def __init__(self, loader: DataLoader, sampler: ShardSampler, device, paths: list[str]):
        self.loader, self.sampler, self.device, self.paths = loader, sampler, torch.device(device), paths

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.sampler.set_epoch(epoch, start_step * self.loader.batch_size)

    @property
    def dataset_size(self) -> int:
        return self.sampler.size

    @property
    def labels(self) -> Tensor:
        return torch.tensor([sample[1] for sample in self.loader.dataset.samples])

    @property
    def num_samples(self) -> int:
        return len(self.sampler) + self.sampler.skip

    def __len__(self) -> int:
        return len(self.loader)

    def sample(self, index: int) -> tuple:
        """Image ``index`` of the data set through the loader's transform, its label (and its boxes)."""
        image, target, *boxes = self.loader.dataset[index]
        if target <= UNREADABLE:
            raise self._unreadable(UNREADABLE - target)
        return image.to(self.device), target, *(b.to(self.device) for b in boxes)

    def _unreadable(self, index: int) -> DataError:
        return DataError("dataset.root", problem=f"{self.paths[index]} is not a readable image: remove or replace it")

    def __iter__(self):
        for batch in self.loader:  # images, targets (and boxes, for localization data)
            targets = batch[1]
            bad = targets <= UNREADABLE  # a host tensor: no device synchronisation
            if bad.any():
                raise self._unreadable(UNREADABLE - int(targets[bad][0]))
            yield tuple(t.to(self.device, non_blocking=True) for t in batch)


def default_workers() -> int:
    """DataLoader workers from the CPUs this process may use, shared by the DDP ranks of its node,
    one left for the process itself (at most 16)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(16, cpus // ranks_here - 1))


def resolve_workers(num_workers: int | str) -> int:
    if num_workers == "auto":
        return default_workers()
    if not (isinstance(num_workers, int) and num_workers >= 0):
        raise ConfigError("num_workers", num_workers, "auto or a number of DataLoader workers >= 0")
    return num_workers


def device_loader(dataset, train: bool, feed: Batching, num_workers: int, prefetch_factor: int,
                  collate_fn=None) -> DeviceLoader:
    """A DataLoader over a data set of files (``dataset.samples``: (path, …) pairs) with workers, pinned
    memory on CUDA, persistent workers and prefetching, this rank's shard of each epoch."""
    sampler = ShardSampler(len(dataset), train, feed)
    workers = dict(persistent_workers=True, prefetch_factor=prefetch_factor) if num_workers > 0 else {}
    loader = DataLoader(dataset, batch_size=feed.batch_size, sampler=sampler, num_workers=num_workers,
                        pin_memory=torch.device(feed.device).type == "cuda", drop_last=feed.drop_last and train,
                        collate_fn=collate_fn, generator=torch.Generator().manual_seed(feed.seed), **workers)
    return DeviceLoader(loader, sampler, feed.device, [path for path, *_ in dataset.samples])
