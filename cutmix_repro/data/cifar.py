"""CIFAR-10/100 through torchvision's datasets (download and MD5 integrity check), then held
on the training device as one uint8 tensor (``TensorLoader``)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets
from torchvision.datasets.utils import check_integrity

from .bundle import DataBundle, DataError
from .tensor_loader import tensor_bundle
from .transforms import CIFAR_MEAN, CIFAR_STD

log = logging.getLogger("cutmix_repro")


class _PresenceChecked:
    """torchvision's CIFAR, with the MD5 comparison moved out of the constructor: files that
    exist are parsed and validated (``load_cifar``) and an MD5 mismatch is reported, so a
    re-packed copy still loads; a missing folder is downloaded and MD5-checked by torchvision."""

    def _check_integrity(self) -> bool:
        folder = Path(self.root) / self.base_folder
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        path = Path(self.root) / self.base_folder / self.meta["filename"]
        with open(path, "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    def md5_mismatches(self) -> list[str]:
        folder = Path(self.root) / self.base_folder
        files = self.train_list + self.test_list + [[self.meta["filename"], self.meta["md5"]]]
        return [name for name, md5 in files if not check_integrity(str(folder / name), md5)]


class _CIFAR10(_PresenceChecked, datasets.CIFAR10):
    pass


class _CIFAR100(_PresenceChecked, datasets.CIFAR100):
    pass


_DATASETS = {"cifar10": (_CIFAR10, 10), "cifar100": (_CIFAR100, 100)}


def load_cifar(name: str, root: str, download: bool, verify_md5: bool = True):
    """(train_images, train_targets, test_images, test_targets) as uint8 NCHW / int64 tensors."""
    if name not in _DATASETS:
        raise DataError(f"dataset.name={name!r} is invalid: choose one of {', '.join(_DATASETS)}")
    cls, num_classes = _DATASETS[name]
    splits = []
    for train in (True, False):
        try:
            ds = cls(root=str(root), train=train, download=download)
        except RuntimeError as err:  # torchvision: not found (or a download that failed its MD5)
            hint = "set dataset.download=true" if not download else "check the network or the folder"
            raise DataError(
                f"dataset.root={str(root)!r} holds no {name} ({str(err).rstrip('.')}); {hint} "
                "or point dataset.root at the folder that holds it"
            ) from None
        except Exception as err:  # truncated or corrupted pickles
            raise DataError(
                f"dataset.root={str(root)!r}: the {name} files are truncated or corrupted "
                f"({type(err).__name__}: {err}); delete them and download again"
            ) from None
        data, targets = np.asarray(ds.data), torch.tensor(ds.targets)
        if data.ndim != 4 or data.shape[1:] != (32, 32, 3) or len(data) != len(targets) or len(data) == 0:
            raise DataError(f"dataset.root={str(root)!r}: the {name} files are malformed "
                            f"(images of shape {data.shape}, {len(targets)} labels)")
        if targets.min() < 0 or targets.max() >= num_classes:
            raise DataError(f"dataset.root={str(root)!r}: {name} labels outside 0..{num_classes - 1}")
        if train and verify_md5 and (bad := ds.md5_mismatches()):
            log.warning("%s files differ from the official release (MD5): %s", name, ", ".join(bad))
        splits += [torch.from_numpy(data).permute(0, 3, 1, 2).contiguous(), targets]
    return tuple(splits)


def cifar(
    name: str = "cifar100",
    root: str = "data",
    download: bool = True,
    verify_md5: bool = True,
    padding: int = 4,
    hflip: bool = True,
    **loader,
) -> DataBundle:
    """CIFAR with the paper's recipe: crop 32 with padding 4, flip, normalise; test on raw images.
    ``loader``: batch_size, device, seed, rank, world_size, … (see ``tensor_bundle``)."""
    if loader.get("rank", 0) == 0 and download:
        Path(root).mkdir(parents=True, exist_ok=True)
    splits = load_cifar(name, root, download, verify_md5)
    return tensor_bundle(name, splits, _DATASETS[name][1], CIFAR_MEAN, CIFAR_STD, padding, hflip, **loader)
