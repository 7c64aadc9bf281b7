"""The input pipelines: batched crop/flip equals torchvision's, exact epochs, shards, formats, and
errors that say what happened."""

import importlib
import urllib.error

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from fakedata import write_cifar10, write_cifar100, write_imagefolder
from scipy import stats
from torchvision import transforms as T

from cutmix_repro.config import build, compose
from cutmix_repro.data import Batching, ShardSampler, TensorLoader, cifar, imagenet, load_cifar
from cutmix_repro.data.loaders import default_workers
from cutmix_repro.data.transforms import CIFAR_MEAN, CIFAR_STD, crop_flip_padded, draw_crop_flip
from cutmix_repro.errors import DataError

cifar_module = importlib.import_module("cutmix_repro.data.cifar")  # the module, not the function of its name


def test_batched_crop_flip_equals_torchvision_for_the_same_offsets():
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    offsets, flips = draw_crop_flip(16, 4, True, torch.Generator().manual_seed(0))
    ours = crop_flip_padded(F.pad(images, (4, 4, 4, 4)), offsets, flips, 32, 32)
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
    loader = TensorLoader(images, torch.arange(50), Batching(batch_size=8), mean=(0.0,), std=(1 / 255,), padding=0,
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
    images, targets = torch.zeros(23, 1, 2, 2, dtype=torch.uint8), torch.arange(23)
    kw = dict(mean=(0.0,), std=(1.0,), padding=0, hflip=False)
    assert len(TensorLoader(images, targets, Batching(batch_size=4, drop_last=True), **kw)) == 5
    shards = [torch.cat([t for _, t in TensorLoader(images, targets, Batching(4, rank=r, world_size=3), **kw)])
              for r in range(3)]
    assert all(len(s) == 7 for s in shards)  # 23 // 3, equal steps on every rank
    assert len(set(torch.cat(shards).tolist())) == 21
    evals = [torch.cat([t for _, t in TensorLoader(images, targets, Batching(4, rank=r, world_size=3), train=False,
                                                   **kw)]) for r in range(3)]
    assert sorted(torch.cat(evals).tolist()) == list(range(23)), "evaluation counts every image once"
    assert TensorLoader(images, targets, Batching(4), **kw).dataset_size == 23


def test_cifar_loader_reads_the_pickle_format_and_normalises(tmp_path):
    write_cifar10(tmp_path, train_per_batch=10, test=7)
    train_x, train_y, test_x, test_y = load_cifar("cifar10", tmp_path, download=False)
    assert train_x.shape == (50, 3, 32, 32) and train_x.dtype == torch.uint8 and test_x.shape[0] == 7
    data = cifar("cifar10", root=str(tmp_path), download=False, verify_md5=True, padding=4, hflip=True, batch_size=64)
    x, _ = next(iter(data.val))
    mean, std = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    assert torch.allclose(x, (test_x.float() / 255 - mean) / std, atol=1e-6), "test images are raw, normalised"
    write_cifar100(tmp_path, train=12, test=5)
    assert load_cifar("cifar100", tmp_path, download=False)[0].shape[0] == 12


def test_truncated_or_missing_cifar_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="dataset.download=true") as missing:
        load_cifar("cifar10", tmp_path, download=False)
    assert "corrupted" not in str(missing.value) and "cifar-10-python.tar.gz" in str(missing.value)
    folder = write_cifar10(tmp_path)
    raw = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="data_batch_3 is truncated or corrupted"):
        load_cifar("cifar10", tmp_path, download=False)
    (folder / "data_batch_3").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(DataError, match="data_batch_3 is truncated or corrupted"):
        load_cifar("cifar10", tmp_path, download=False)


def test_a_failed_download_says_so_with_the_address_the_network_error_and_the_way_by_hand(tmp_path, monkeypatch):
    def offline(url, download_root, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(cifar_module, "download_and_extract_archive", offline)
    with pytest.raises(DataError) as failed:
        load_cifar("cifar100", str(tmp_path), download=True)
    message = str(failed.value)
    assert message.startswith(f"root={str(tmp_path)!r}: could not download cifar100 from https://")
    assert "URLError" in message and "Name or service not known" in message
    assert "cifar-100-python.tar.gz" in message and "by hand" in message
    assert "corrupted" not in message
    assert build_error_line(["dataset=cifar100", f"dataset.root={tmp_path}"], monkeypatch).startswith("dataset.root=")


def build_error_line(overrides, monkeypatch) -> str:
    cfg = compose(overrides)
    with pytest.raises(DataError) as err:
        build(cfg.dataset, "dataset", batch_size=8)
    return str(err.value)


def test_an_archive_placed_by_hand_is_extracted_instead_of_downloaded(tmp_path, monkeypatch):
    import tarfile

    write_cifar10(tmp_path / "staging", train_per_batch=4, test=3)
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "staging" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setattr(cifar_module, "download_and_extract_archive", lambda *a, **k: pytest.fail("downloaded"))
    train_x, _, test_x, _ = load_cifar("cifar10", str(tmp_path), download=True)
    assert train_x.shape == (20, 3, 32, 32) and test_x.shape[0] == 3


def small_imagenet(root, **overrides):
    return imagenet(str(root), **{"image_size": 32, "resize": 36, "num_workers": 0, "prefetch_factor": 2,
                                  "pipeline": "pil", "batch_size": 4, **overrides})


def test_imagenet_folder_loads_batches_of_the_crop_size(tmp_path):
    write_imagefolder(tmp_path, classes=2, train_per_class=3, val_per_class=2)
    data = small_imagenet(tmp_path)
    assert data.num_classes == 2 and len(data.train) == 2 and data.val.num_samples == 4
    x, y = next(iter(data.train))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    with pytest.raises(DataError, match="^root=.*missing.*no folder train/"):
        small_imagenet(tmp_path / "missing")


def test_imagenet_empty_class_folder_is_one_clear_error(tmp_path):
    write_imagefolder(tmp_path, classes=2)
    (tmp_path / "train" / "n_empty").mkdir()
    (tmp_path / "val" / "n_empty").mkdir()
    with pytest.raises(DataError, match="n_empty"):
        small_imagenet(tmp_path)


@pytest.mark.parametrize("pipeline", ["pil", "device"])  # decoded in a worker, or on the device
@pytest.mark.parametrize("workers", [0, 2])
def test_an_unreadable_image_is_named_by_the_main_process(tmp_path, workers, pipeline):
    write_imagefolder(tmp_path, classes=2, train_per_class=3, val_per_class=2)
    (tmp_path / "train" / "n00000001" / "broken.JPEG").write_text("not a jpeg")
    data = small_imagenet(tmp_path, num_workers=workers, batch_size=7, pipeline=pipeline)
    with pytest.raises(DataError, match=r"^dataset\.root: .*n00000001/broken\.JPEG is not a readable image"):
        list(data.train)
    assert len(list(data.val)) == 1, "the other split is unaffected"


def test_loader_workers_come_from_the_cpus_this_process_may_use(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(2)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_workers() == 1, "2 CPUs: one worker and the process itself"
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert default_workers() == 7, "8 ranks on 64 CPUs: 8 each"
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert default_workers() == 0
    assert compose(["dataset=imagenet"]).dataset.num_workers == "auto"
    with pytest.raises(ValueError, match="num_workers=-1"):
        small_imagenet("nowhere", num_workers=-1)


def test_shard_sampler_eval_covers_each_index_once():
    parts = [list(ShardSampler(11, train=False, batching=Batching(1, rank=r, world_size=4))) for r in range(4)]
    assert sorted(sum(parts, [])) == list(range(11))


def test_digits_are_real_32x32_rgb_with_a_fixed_split():
    data = build(compose(["dataset=digits"]).dataset, "dataset", batch_size=32)
    assert data.num_classes == 10 and data.train.num_samples == 1438 and data.val.num_samples == 359
    x, y = next(iter(data.val))
    assert x.shape[1:] == (3, 32, 32) and torch.equal(x[:, 0], x[:, 1])
