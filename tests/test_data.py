"""The input pipelines: batched crop/flip equals torchvision's, exact epochs, shards, formats."""

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from fakedata import write_cifar10, write_cifar100, write_imagefolder
from scipy import stats
from torchvision import transforms as T

from cutmix_repro.data import DataError, TensorLoader, cifar, digits, imagenet, load_cifar
from cutmix_repro.data.imagenet import ShardSampler
from cutmix_repro.data.transforms import CIFAR_MEAN, CIFAR_STD, Lighting, crop_flip, draw_crop_flip


def test_batched_crop_flip_equals_torchvision_for_the_same_offsets():
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    offsets, flips = draw_crop_flip(16, 4, True, torch.Generator().manual_seed(0))
    ours = crop_flip(images, offsets, flips, padding=4)
    for i in range(16):
        padded = TF.pad(images[i], [4, 4, 4, 4], fill=0)
        ref = TF.crop(padded, int(offsets[i, 0]), int(offsets[i, 1]), 32, 32)
        if flips[i]:
            ref = TF.hflip(ref)
        assert torch.equal(ours[i], ref)


def test_batched_crop_flip_draws_the_same_distribution_as_torchvision():
    gen = torch.Generator().manual_seed(1)
    offsets, flips = draw_crop_flip(20000, 4, True, gen)
    torch.manual_seed(2)
    crop = T.RandomCrop(32, padding=4)
    padded = torch.zeros(1, 40, 40)
    ref = torch.tensor([crop.get_params(padded, (32, 32))[:2] for _ in range(20000)])
    for axis in (0, 1):  # offsets 0..8 uniform, like RandomCrop.get_params on the padded image
        ours_counts = torch.bincount(offsets[:, axis], minlength=9).numpy()
        ref_counts = torch.bincount(ref[:, axis], minlength=9).numpy()
        assert stats.chi2_contingency(np.stack([ours_counts, ref_counts])).pvalue > 0.001
        assert offsets[:, axis].min() == 0 and offsets[:, axis].max() == 8
    ref_flips = sum(bool(torch.rand(1) < 0.5) for _ in range(20000))  # RandomHorizontalFlip's draw
    table = [[int(flips.sum()), 20000 - int(flips.sum())], [ref_flips, 20000 - ref_flips]]
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_every_image_once_per_epoch_and_epochs_differ():
    images = torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1).expand(50, 1, 4, 4).contiguous()
    loader = TensorLoader(images, torch.arange(50), batch_size=8, mean=(0.0,), std=(1 / 255,), padding=0,
                          hflip=False)
    assert len(loader) == 7  # 6 full batches + a partial one of 2
    seen = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        batches = list(loader)
        assert [len(t) for _, t in batches] == [8] * 6 + [2]
        order = torch.cat([t for _, t in batches])
        assert sorted(order.tolist()) == list(range(50))
        # labels still match images after the shuffle
        assert torch.equal(torch.cat([x[:, 0, 0, 0] for x, _ in batches]).round().long(), order)
        seen.append(order)
    assert not torch.equal(seen[0], seen[1])
    loader.set_epoch(0)
    assert torch.equal(torch.cat([t for _, t in loader]), seen[0]), "an epoch is reproducible"


def test_drop_last_and_ddp_shards_are_disjoint():
    images = torch.zeros(23, 1, 2, 2, dtype=torch.uint8)
    kw = dict(mean=(0.0,), std=(1.0,), padding=0, hflip=False, batch_size=4)
    assert len(TensorLoader(images, torch.arange(23), drop_last=True, **kw)) == 5
    shards = [torch.cat([t for _, t in TensorLoader(images, torch.arange(23), rank=r, world_size=3, **kw)])
              for r in range(3)]
    assert all(len(s) == 7 for s in shards)  # 23 // 3, equal steps on every rank
    assert len(set(torch.cat(shards).tolist())) == 21
    evals = [torch.cat([t for _, t in TensorLoader(images, torch.arange(23), train=False, rank=r, world_size=3,
                                                   **kw)]) for r in range(3)]
    assert sorted(torch.cat(evals).tolist()) == list(range(23)), "evaluation counts every image once"
    with pytest.raises(ValueError, match="world_size"):
        TensorLoader(images, torch.arange(23), world_size=30, **kw)


def test_cifar_loader_reads_the_pickle_format_and_normalises(tmp_path):
    write_cifar10(tmp_path, train_per_batch=10, test=7)
    train_x, train_y, test_x, test_y = load_cifar("cifar10", tmp_path, download=False)
    assert train_x.shape == (50, 3, 32, 32) and train_x.dtype == torch.uint8 and test_x.shape[0] == 7
    data = cifar("cifar10", root=str(tmp_path), download=False, batch_size=64)
    x, _ = next(iter(data.val))
    mean, std = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    assert torch.allclose(x, (test_x.float() / 255 - mean) / std, atol=1e-6), "test images are raw, normalised"
    write_cifar100(tmp_path, train=12, test=5)
    assert load_cifar("cifar100", tmp_path, download=False)[0].shape[0] == 12


def test_truncated_or_missing_cifar_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="dataset.download=true"):
        load_cifar("cifar10", tmp_path, download=False)
    folder = write_cifar10(tmp_path)
    raw = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated or corrupted"):
        load_cifar("cifar10", tmp_path, download=False)
    (folder / "data_batch_3").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(DataError, match="truncated or corrupted"):
        load_cifar("cifar10", tmp_path, download=False)


def test_imagenet_folder_loads_with_the_official_transforms(tmp_path):
    write_imagefolder(tmp_path, classes=2, train_per_class=3, val_per_class=2)
    data = imagenet(str(tmp_path), image_size=32, resize=36, num_workers=0, batch_size=4)
    assert data.num_classes == 2 and len(data.train) == 2 and data.val.num_samples == 4
    x, y = next(iter(data.train))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    with pytest.raises(DataError, match="dataset.root"):
        imagenet(str(tmp_path / "missing"), batch_size=4)


def test_imagenet_empty_class_folder_is_one_clear_error(tmp_path):
    write_imagefolder(tmp_path, classes=2)
    (tmp_path / "train" / "n_empty").mkdir()
    (tmp_path / "val" / "n_empty").mkdir()
    with pytest.raises(DataError, match="n_empty"):
        imagenet(str(tmp_path), batch_size=4, num_workers=0)


def test_shard_sampler_eval_covers_each_index_once():
    parts = [list(ShardSampler(11, train=False, rank=r, world_size=4)) for r in range(4)]
    assert sorted(sum(parts, [])) == list(range(11))


def test_lighting_is_alexnet_pca_noise():
    torch.manual_seed(0)
    img = torch.full((3, 4, 4), 0.5)
    out = Lighting(0.1)(img)
    shift = out - img
    assert torch.allclose(shift, shift[:, :1, :1].expand_as(shift)), "one RGB shift per image"
    assert 0 < shift.abs().max() < 0.2
    assert torch.equal(Lighting(0.0)(img), img)


def test_digits_are_real_32x32_rgb_with_a_fixed_split():
    data = digits(batch_size=32)
    assert data.num_classes == 10 and data.train.num_samples == 1438 and data.val.num_samples == 359
    x, y = next(iter(data.val))
    assert x.shape[1:] == (3, 32, 32) and torch.equal(x[:, 0], x[:, 1])
