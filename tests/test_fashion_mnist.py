"""Fashion-MNIST: the real idx files read by content (written here in their on-disk format, full size, plain and
gzipped, in torchvision's layout and a package's), damaged or missing files as one line, one channel through to the
model and back from a checkpoint, PreAct-ResNet-18's two variants; and, where Debian's package is installed, the real
files (skipped naming the package elsewhere, a failure under ``make test``)."""

from __future__ import annotations

import gzip
import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import FAST, train_main

from cutmix_repro.config import build, compose
from cutmix_repro.data import fashion_mnist as fashion_mnist_factory
from cutmix_repro.data import load_fashion_mnist
from cutmix_repro.errors import DataError
from cutmix_repro.models import count_parameters, create_model

FM = importlib.import_module("cutmix_repro.data.fashion_mnist")  # the module (the package exports a function so named)
SYSTEM = Path(FM.SYSTEM_DIR)


def fashion_mnist(root, download=False, padding=4, hflip=True, normalize="own", channels=1, train_subset=None,
                  subset_seed=0, system_dir=None, **batching):
    """The data set factory with the config's defaults (configs/dataset/fashion_mnist.yaml)."""
    return fashion_mnist_factory(root, download, padding, hflip, normalize, channels, train_subset, subset_seed,
                                 system_dir, **batching)


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8: N×28×28 images or N labels) in the idx format: magic, the dimensions (big-endian int32)."""
    magic = 2051 if array.ndim == 3 else 2049
    return np.array([magic, *array.shape], dtype=">i4").tobytes() + array.astype(np.uint8).tobytes()


TRAIN, TEST = 2_000, 300  # fewer than the release's 60,000 / 10,000: loaded, with a warning


def fake_splits(seed: int = 0):
    """Splits whose every image says its index and label: pixel (0, 0) = label·20, pixel (0, 1) = index mod 251;
    labels cycle 0..9 in a shuffled order."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", TRAIN), ("t10k", TEST)):
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = labels * 20
        images[:, 0, 1] = np.arange(n) % 251
        out[split] = (images, labels)
    return out


def write_files(folder: Path, splits, gz: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in splits.items():
        for kind, array in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            name, data = f"{split}-{kind}", idx_bytes(array)
            if gz:
                with gzip.open(folder / f"{name}.gz", "wb", compresslevel=1) as f:
                    f.write(data)
            else:
                (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(root holding torchvision's layout with plain files, a package-like folder of .gz files, the splits)."""
    base = tmp_path_factory.mktemp("fashion")
    splits = fake_splits()
    write_files(base / "root" / "FashionMNIST" / "raw", splits, gz=False)
    write_files(base / "package", splits, gz=True)
    return base / "root", base / "package", splits


def test_reads_the_idx_files_plain_in_torchvisions_layout_and_gzipped_in_the_packages_folder(files, tmp_path,
                                                                                               caplog):
    root, package, splits = files
    for where, system_dir in ((str(root), None), (str(tmp_path / "empty"), str(package))):
        train_x, train_y, test_x, test_y = load_fashion_mnist(where, system_dir=system_dir)
        assert train_x.shape == (TRAIN, 1, 28, 28) and train_x.dtype == torch.uint8 and test_x.shape[0] == TEST
        assert torch.equal(train_x[:, 0], torch.from_numpy(splits["train"][0]))
        assert torch.equal(test_y, torch.from_numpy(splits["t10k"][1]).long())
    assert not (tmp_path / "empty").exists(), "reading writes nothing"
    assert f"holds {TRAIN} train images, not the release's 60000" in caplog.text


def test_dataset_root_comes_before_the_package_folder(files, tmp_path):
    root, package, _ = files
    other = write_files(tmp_path / "mine", fake_splits(seed=1), gz=False)
    mine = load_fashion_mnist(str(other), system_dir=str(package))[1]
    assert torch.equal(mine, torch.from_numpy(fake_splits(seed=1)["train"][1]).long())


def test_a_balanced_subset_one_channel_own_normalisation_and_the_published_crop_and_flip(files):
    root, _, splits = files
    data = fashion_mnist(str(root), download=False, padding=4, hflip=True, train_subset=1000, subset_seed=3,
                         system_dir=None, batch_size=100)  # 100 of each class's 200
    assert data.in_chans == 1 and data.num_classes == 10 and data.class_names[9] == "Ankle boot"
    labels = data.train.labels
    assert data.train.dataset_size == 1000 and torch.bincount(labels).tolist() == [100] * 10
    kept = data.train.images[:, 0, 4, 5]  # pixel (0, 1) of each kept image, inside the 4-pixel padding
    assert len(set(kept.tolist())) > 200, "distinct images, not one repeated"
    pixels = torch.stack([data.train.sample(i)[0] for i in range(1000)])  # unaugmented, normalised
    assert abs(float(pixels.mean())) < 1e-4 and abs(float(pixels.std()) - 1) < 1e-3, "the subset's own mean and std"
    x, y = next(iter(data.train))
    assert x.shape == (100, 1, 28, 28)
    test_x, _ = next(iter(data.val))
    mean, std = data.mean[0], data.std[0]
    raw = torch.from_numpy(splits["t10k"][0][:len(test_x)]).float().unsqueeze(1) / 255
    assert torch.allclose(test_x, (raw - mean) / std, atol=1e-5), "test images: whole, unaugmented"
    mnist = fashion_mnist(str(root), download=False, padding=4, hflip=True, normalize="mnist", system_dir=None,
                          batch_size=8)
    assert mnist.mean == (0.1307,) and mnist.std == (0.3081,) and mnist.train.dataset_size == TRAIN


def damaged(tmp_path, files, stem: str, transform) -> Path:
    root, _, _ = files
    folder = tmp_path / "FashionMNIST" / "raw"
    folder.mkdir(parents=True)
    for path in (root / "FashionMNIST" / "raw").iterdir():
        (folder / path.name).symlink_to(path)
    (folder / stem).unlink()
    (folder / stem).write_bytes(transform((root / "FashionMNIST" / "raw" / stem).read_bytes()))
    return tmp_path


@pytest.mark.parametrize("stem, transform, needle", [
    ("train-images-idx3-ubyte", lambda raw: raw[: len(raw) // 2], f"{(16 + TRAIN * 784) // 2:,} bytes once "
     f"decompressed, where its header's {TRAIN:,} images take {16 + TRAIN * 784:,}"),
    ("t10k-labels-idx1-ubyte", lambda raw: np.array([2051, TEST], ">i4").tobytes() + raw[8:], "idx header"),
    ("t10k-images-idx3-ubyte", lambda raw: raw[:8] + np.array([32, 32], ">i4").tobytes() + raw[16:],
     "where t10k-images-idx3-ubyte has [2051, N, 28, 28]"),
    ("t10k-labels-idx1-ubyte", lambda raw: raw[:8] + bytes([12]) + raw[9:], "labels up to 12"),
    ("train-labels-idx1-ubyte", lambda raw: raw[:4] + np.array([TRAIN - 1], ">i4").tobytes() + raw[8:-1],
     f"{TRAIN:,} train images and {TRAIN - 1:,} labels"),
    ("train-labels-idx1-ubyte", lambda raw: raw[:5], "not even an idx header"),
])
def test_a_damaged_file_is_one_line_naming_it(tmp_path, files, stem, transform, needle):
    root = damaged(tmp_path, files, stem, transform)
    with pytest.raises(DataError) as err:
        load_fashion_mnist(str(root), system_dir=None)
    message = str(err.value)
    assert needle in message and "reinstall" in message and "\n" not in message, message


def test_a_damaged_gzip_is_one_line(tmp_path, files):
    _, package, _ = files
    folder = tmp_path / "pkg"
    folder.mkdir()
    for path in package.iterdir():
        (folder / path.name).symlink_to(path)
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz cannot be read"):
        load_fashion_mnist(str(tmp_path / "nothing"), system_dir=str(folder))


def test_missing_files_through_the_command_line_are_one_line_naming_where_and_how_and_nothing_is_written(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "run"
    status, stderr = train_main(["+experiment=fashion_mnist_cpu", "dataset.root=nowhere",
                                 f"dataset.system_dir={tmp_path / 'no-package'}", "trainer.epochs=1", *FAST,
                                 f"hydra.run.dir={run}"], monkeypatch)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1, stderr
    assert "nowhere/FashionMNIST/raw" in lines[0] and "no-package" in lines[0]
    assert "apt-get install dataset-fashion-mnist" in lines[0] and "dataset.download=true" in lines[0]
    assert list(tmp_path.iterdir()) == [], "nothing written, not even the run's folders"


@pytest.mark.parametrize("key, value, needle", [("normalize", "imagenet", "own"), ("channels", 2, "1 (the grey"),
                                                ("train_subset", 1005, "multiple of 10")])
def test_bad_options_are_one_line(files, key, value, needle):
    root, _, _ = files
    cfg = compose(["dataset=fashion_mnist", f"dataset.root={root}", f"dataset.{key}={value}"])
    with pytest.raises(DataError) as err:
        build(cfg.dataset, "dataset", batch_size=8)
    assert str(err.value).startswith(f"dataset.{key}={value!r}") and needle in str(err.value)


def test_one_channel_reaches_the_model_the_checkpoint_and_every_command_that_reloads_it(files, tmp_path, monkeypatch):
    from cutmix_repro.saved import load_run

    root, _, _ = files
    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    status, err = train_main(["+experiment=fashion_mnist_cpu", f"dataset.root={root}", "dataset.train_subset=200",
                              "model.depth=8", "trainer.epochs=1", "trainer.batch_size=50", *FAST,
                              f"hydra.run.dir={run}"], monkeypatch)
    assert status == 0, err
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["model"]["stem.0.weight"].shape == (16, 1, 3, 3) and state["meta"]["in_chans"] == 1
    saved = load_run(run)
    assert saved.model.stem[0].in_channels == 1
    x, _ = next(iter(saved.data(batch_size=4).val))
    assert saved.model(x).shape == (len(x), 10)
    from cutmix_repro import evaluate, figure1

    assert evaluate.main([str(run), "clean", "fgsm", "occlusion", "calibration", "in-between", "--pairs", "20",
                          "--occlusion-sizes", "0", "14", "28", "--device", "cpu"]) == 0
    measured = json.loads((run / "evaluation.json").read_text())
    assert {"clean", "fgsm", "occlusion", "calibration", "in-between"} <= set(measured)
    assert figure1.main(["--run", str(run), "--indices", "0", "1", "--out", str(tmp_path / "figure1.png")]) == 0
    assert (tmp_path / "figure1.png").stat().st_size > 10_000


def test_preact_resnet18_counts_the_fmix_codes_parameters_and_takes_the_channels():
    """FMix's ResNet18 (models/resnet.py, PreActBlock [2, 2, 2, 2], widths 64-512): stem 3×3 conv + BN; per block
    two 3×3 convs and two BNs (the first over the block's input); 1×1 projections (no BN) where the shape changes;
    a linear classifier. Counted here from that description."""
    def count(in_chans: int, classes: int, w: int = 64) -> int:
        total, cin = in_chans * w * 9 + 2 * w, w
        for planes, stride in ((w, 1), (2 * w, 2), (4 * w, 2), (8 * w, 2)):
            for i in range(2):
                total += 2 * cin + cin * planes * 9 + 2 * planes + planes * planes * 9
                if (stride if i == 0 else 1) != 1 or cin != planes:
                    total += cin * planes
                cin = planes
        return total + 8 * w * classes + classes

    assert count_parameters(create_model("preact_resnet18", 10, in_chans=1)) == count(1, 10) == 11_170_122
    assert count_parameters(create_model("preact_resnet18", 100)) == count(3, 100)
    narrow = create_model("preact_resnet18", 10, in_chans=1, width=8)  # a quick CPU model of the same design
    assert count_parameters(narrow) == count(1, 10, 8) and narrow.arch_name == "preact_resnet18_w8"
    he = create_model("preact_resnet18", 10, variant="he2016")  # no stem BN; BN-ReLU before the pooling
    assert count_parameters(he) == count(3, 10) - 2 * 64 + 2 * 512


@pytest.mark.parametrize("variant, carries", [("fmix", "the pre-activated input"), ("he2016", "the input")])
def test_preact_identity_shortcut_carries_what_each_variant_says(variant, carries):
    model = create_model("preact_resnet18", 10, variant=variant).eval()
    block = model.stages[0][1]  # 64 → 64, stride 1: an identity shortcut
    torch.nn.init.zeros_(block.conv2.weight)  # the residual branch adds nothing
    with torch.no_grad():
        block.bn1.weight.fill_(2.0)
        block.bn1.bias.fill_(-0.5)
        x = torch.randn(2, 64, 8, 8)
        expected = torch.relu(block.bn1(x)) if variant == "fmix" else x
        assert torch.allclose(block(x), expected), carries


def test_bad_preact_options_are_one_line():
    for options, needle in (({"depth": 34}, "depth=34"), ({"variant": "kuangliu"}, "variant='kuangliu'")):
        cfg = compose(["model=preact_resnet18", *(f"model.{k}={v}" for k, v in options.items())])
        with pytest.raises(Exception) as err:
            build(cfg.model, "model", num_classes=10)
        assert str(err.value).startswith(f"model.{needle}")


def needs_debian_package() -> Path:
    """The real files of Debian's dataset-fashion-mnist, by the optional-package rule: absent, the test skips naming
    the package; under CI (``.ci/run`` installs the package and sets ``CUTMIX_REQUIRE_DATA=1``) it fails."""
    if all((SYSTEM / f"{stem}.gz").is_file() for stem in FM.FILES):
        return SYSTEM
    message = f"needs Debian's dataset-fashion-mnist in {SYSTEM} (apt-get install dataset-fashion-mnist)"
    if os.environ.get("CUTMIX_REQUIRE_DATA") == "1":
        pytest.fail(message + "; CUTMIX_REQUIRE_DATA=1 (CI) makes its absence a failure", pytrace=False)
    pytest.skip(message)


def test_the_real_files_of_the_debian_package(tmp_path):
    """The package's files (recompressed: their MD5s are not torchvision's) pass the content checks; the first
    few hundred images and labels are Zalando's (Fashion-MNIST's published first labels: 9, 0, 0, 3, 0, 2, 7, 2, 5,
    5 for training, 9, 2, 1, 1, 6, 1, 4, 6, 5, 7 for test), the training pixels' mean and std are the published
    0.2860 and 0.3530 (of [0, 1] pixels)."""
    folder = needs_debian_package()
    train_x, train_y, test_x, test_y = load_fashion_mnist(str(tmp_path / "none"), system_dir=str(folder))
    assert train_y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert test_y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert torch.bincount(train_y).tolist() == [6000] * 10 and torch.bincount(test_y).tolist() == [1000] * 10
    few = train_x[:300].float() / 255
    assert 0.2 < float(few.mean()) < 0.4 and float((few > 0).float().mean()) > 0.3, "real photographs, not blank"
    pixels = train_x.float() / 255
    assert abs(float(pixels.mean()) - 0.2860) < 5e-4 and abs(float(pixels.std()) - 0.3530) < 5e-4


def test_download_goes_through_torchvision_and_a_failed_one_is_one_line_leaving_nothing(files, tmp_path, monkeypatch):
    from urllib.error import URLError

    from torchvision import datasets

    _, package, _ = files
    calls = []

    def offline(root, train=True, download=False, **kwargs):
        calls.append((root, train, download))
        raise URLError("no network in this test")

    monkeypatch.setattr(datasets, "FashionMNIST", offline)
    root = tmp_path / "data" / "fm"
    with pytest.raises(DataError) as err:
        fashion_mnist(str(root), download=True, padding=4, hflip=True, system_dir=None, batch_size=8)
    message = str(err.value)
    assert "could not download Fashion-MNIST (URLError" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert calls == [(str(root), True, True)] and not (tmp_path / "data").exists(), "nothing left behind"

    def fetched(root, train=True, download=False, **kwargs):  # what torchvision leaves: ROOT/FashionMNIST/raw/*.gz
        raw = Path(root) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for path in package.iterdir():
            (raw / path.name).write_bytes(path.read_bytes())

    monkeypatch.setattr(datasets, "FashionMNIST", fetched)
    data = fashion_mnist(str(root), download=True, padding=4, hflip=True, system_dir=None, batch_size=8)
    assert data.train.dataset_size == TRAIN and (root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").exists()
