"""A data set held as one uint8 tensor on the training device, augmented a batch at a time.

Every epoch draws one permutation and every image's crop offset and flip from a generator
seeded by (seed, epoch), so an epoch is the same whether or not the run was resumed. Every
image is seen exactly once per epoch on one process; the last batch is partial unless
``drop_last``. Under DDP each rank takes an equal, disjoint shard of the permutation (the
remainder of N modulo the world size, at most world−1 images, sits out that epoch).
Evaluation shards are rank::world, so every test image is counted exactly once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .transforms import crop_flip_padded, draw_crop_flip, normalize


class TensorLoader:
    def __init__(
        self,
        images: Tensor,
        targets: Tensor,
        batch_size: int,
        mean,
        std,
        train: bool = True,
        padding: int = 4,
        hflip: bool = True,
        device: str | torch.device = "cpu",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} is invalid: must be >= 1")
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("images must be a uint8 tensor of shape (N, C, H, W)")
        if world_size > len(images):
            raise ValueError(f"world_size={world_size} is invalid: larger than the {len(images)} images")
        self.device = torch.device(device)
        self.height, self.width = images.shape[-2:]
        if train and padding > 0:  # pad once, not every batch
            images = F.pad(images, (padding, padding, padding, padding))
        self.images = images.to(self.device)
        self.targets = targets.long().to(self.device)
        self.batch_size, self.train = batch_size, train
        self.padding, self.hflip = padding, hflip
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.drop_last = drop_last
        c = images.shape[1]
        self.mean = torch.tensor(mean, device=self.device).view(1, c, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, c, 1, 1)
        self.epoch, self.start_step = 0, 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Draw epoch ``epoch``'s order and augmentation; skip its first ``start_step`` batches
        (a run resumed mid-epoch continues exactly where it stopped)."""
        self.epoch, self.start_step = epoch, start_step

    @property
    def num_samples(self) -> int:
        """Images this rank sees per pass."""
        n = len(self.images)
        if self.train:
            return n // self.world_size
        return len(range(self.rank, n, self.world_size))

    def __len__(self) -> int:
        return self._num_batches() - self.start_step

    def _num_batches(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last and self.train else math.ceil(n / self.batch_size)

    def _indices(self, generator: torch.Generator) -> Tensor:
        n = len(self.images)
        if not self.train:
            return torch.arange(self.rank, n, self.world_size)
        perm = torch.randperm(n, generator=generator)
        usable = n - n % self.world_size
        return perm[:usable][self.rank :: self.world_size]

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        indices = self._indices(generator)
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
            yield normalize(images, self.mean, self.std), self.targets[idx]


def tensor_bundle(
    name: str,
    splits: tuple[Tensor, Tensor, Tensor, Tensor],
    num_classes: int,
    mean,
    std,
    padding: int,
    hflip: bool,
    *,
    batch_size: int,
    device="cpu",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
    eval_batch_size: int | None = None,
):
    """A ``DataBundle`` of two ``TensorLoader``s: augmented training batches and raw test
    batches (``eval_batch_size``, by default max(batch_size, 256)). The keyword arguments
    are what the trainer passes to every data set factory."""
    from .bundle import DataBundle

    train_x, train_y, test_x, test_y = splits
    common = dict(mean=mean, std=std, device=device, seed=seed, rank=rank, world_size=world_size)
    return DataBundle(
        name=name,
        train=TensorLoader(train_x, train_y, batch_size, train=True, padding=padding, hflip=hflip,
                           drop_last=drop_last, **common),
        val=TensorLoader(test_x, test_y, eval_batch_size or max(batch_size, 256), train=False, **common),
        num_classes=num_classes,
        image_size=tuple(train_x.shape[-2:]),
    )
