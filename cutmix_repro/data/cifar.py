"""CIFAR-10/100: downloaded and extracted with torchvision's public helpers (address, archive name and
MD5 from torchvision's CIFAR classes), read from the python-version pickles, then held on the training
device as one uint8 tensor (``TensorLoader``).

Files that exist are parsed and validated (shape, labels); an MD5 that differs from the official
release is logged as a warning, not refused, so a re-packed copy still loads.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets
from torchvision.datasets.utils import check_integrity, download_and_extract_archive, extract_archive

from ..errors import DataError
from .loaders import DataBundle, tensor_bundle
from .transforms import CIFAR_MEAN, CIFAR_STD

log = logging.getLogger("cutmix_repro")

_DATASETS = {"cifar10": (datasets.CIFAR10, 10, "labels"), "cifar100": (datasets.CIFAR100, 100, "fine_labels")}


def _fetch(name: str, root: Path, download: bool) -> None:
    """Make ``root/<base_folder>`` hold the files: extract an archive placed there by hand, or download it."""
    release = _DATASETS[name][0]
    archive = root / release.filename
    by_hand = f"place {release.filename} (MD5 {release.tgz_md5}, from {release.url}) in {str(root)!r} by hand"
    if archive.is_file():
        if not check_integrity(str(archive), release.tgz_md5):
            log.warning("%s differs from the official release (MD5); extracting it anyway", archive)
        extract_archive(str(archive), str(root))
        return
    if not download:
        raise DataError("root", str(root), f"holds no {name}: set dataset.download=true, or {by_hand}")
    try:
        download_and_extract_archive(release.url, str(root), filename=release.filename, md5=release.tgz_md5)
    except Exception as err:  # no network (URLError), a proxy, an interrupted or altered download
        (root / release.filename).unlink(missing_ok=True)
        raise DataError("root", str(root), f"could not download {name} from {release.url} "
                        f"({type(err).__name__}: {err}); {by_hand}, or check the network") from None


def _read(path: Path, label_key: str) -> tuple[np.ndarray, list[int]]:
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    return np.asarray(entry["data"], dtype=np.uint8), list(entry[label_key])


def load_cifar(name: str, root: str, download: bool, verify_md5: bool = True):
    """(train_images, train_targets, test_images, test_targets) as uint8 NCHW / int64 tensors."""
    if name not in _DATASETS:
        raise DataError("name", name, f"choose one of {', '.join(_DATASETS)}")
    release, num_classes, label_key = _DATASETS[name]
    root_path = Path(root)
    folder = root_path / release.base_folder
    files = release.train_list + release.test_list
    if not all((folder / file).is_file() for file, _ in files):
        _fetch(name, root_path, download)
    if verify_md5 and (bad := [file for file, md5 in files if not check_integrity(str(folder / file), md5)]):
        log.warning("%s files differ from the official release (MD5): %s", name, ", ".join(bad))
    splits = []
    for split in (release.train_list, release.test_list):
        images, labels = [], []
        for file, _ in split:
            try:
                data, targets = _read(folder / file, label_key)
                data = data.reshape(-1, 3, 32, 32)  # rows of 3072 bytes: R, G, B planes of 32×32
            except Exception as err:
                raise DataError("root", str(root), f"{folder / file} is truncated or corrupted "
                                f"({type(err).__name__}: {err}); delete {folder}/ and download again") from None
            if len(data) != len(targets) or len(data) == 0:
                raise DataError("root", str(root), f"{folder / file} is malformed ({len(data)} images, "
                                f"{len(targets)} labels)")
            images.append(data)
            labels += targets
        targets = torch.tensor(labels)
        if targets.min() < 0 or targets.max() >= num_classes:
            raise DataError("root", str(root), f"{name} labels outside 0..{num_classes - 1} in {folder}")
        splits += [torch.from_numpy(np.concatenate(images)), targets]
    return tuple(splits)


def class_names(name: str, root: str) -> list[str] | None:
    """The label names of the release's meta file, if it is there and readable."""
    release = _DATASETS[name][0]
    try:
        with open(Path(root) / release.base_folder / release.meta["filename"], "rb") as f:
            return [str(n) for n in pickle.load(f, encoding="latin1")[release.meta["key"]]]
    except (OSError, pickle.UnpicklingError, KeyError, EOFError):
        return None


def cifar(
    name: str,
    root: str,
    download: bool,
    verify_md5: bool,
    padding: int,
    hflip: bool,
    **batching,
) -> DataBundle:
    """CIFAR with the paper's recipe: crop 32 with padding 4, flip, normalise; test on raw images.
    ``batching``: the fields of ``loaders.Batching``."""
    made = [p for p in (Path(root), *Path(root).parents) if not p.exists()]  # what a failed download leaves
    if batching.get("rank", 0) == 0 and download:
        Path(root).mkdir(parents=True, exist_ok=True)
    try:
        splits = load_cifar(name, root, download, verify_md5)
    except DataError:
        for folder in made:  # innermost first; only the empty folders this attempt created
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return tensor_bundle(name, splits, _DATASETS[name][1], CIFAR_MEAN, CIFAR_STD, padding, hflip,
                         class_names(name, root), **batching)
