"""Fashion-MNIST (Xiao et al., 2017): 60,000 + 10,000 real 28×28 grey photographs of clothing, 10 classes.

The four original files (``train-images-idx3-ubyte`` …, plain or ``.gz``) are read from ``dataset.root`` in
torchvision's layout (``ROOT/FashionMNIST/raw/``, or the files directly in ``ROOT``), else from the folder of
Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist/``), else downloaded with
torchvision's ``FashionMNIST`` when ``dataset.download=true``. They are checked by content, not by the archives'
MD5 (Debian's ``.gz`` files are recompressed, so their MD5s differ from the ones torchvision checks): each file's
idx header (magic number, 28×28), its decompressed size against the count its header gives, its labels (0..9), one
label per image; a count other than the release's 60,000 / 10,000 is a warning (a subset written by hand loads).

The images stay one channel (``channels: 1``; the models take the channel count from the data set); ``channels:
3`` repeats the grey plane for a model that wants RGB. Normalisation: the training images' own mean and std
(``normalize: own``), or MNIST's (0.1307, 0.3081) as the FMix code's ``fashion_transforms`` uses
(``normalize: mnist``). Training batches: RandomCrop(28, padding=4) and a horizontal flip (the FMix and Random
Erasing Fashion-MNIST protocols); the test set is never augmented. ``train_subset: N`` trains on a class-balanced
subset of N images (N/10 of each class, drawn with ``subset_seed``); the test set is always the whole 10,000.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .loaders import DataBundle, tensor_bundle

log = logging.getLogger("cutmix_repro")

SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist package
INSTALL = "apt-get install dataset-fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)  # the FMix code's Normalize for --dataset=fashion
SIZE = 28
# file stem -> (idx magic number, the release's number of items); a file's decompressed size is 16 + n·28·28 (images)
# or 8 + n (labels) bytes for the n its header says
FILES = {
    "train-images-idx3-ubyte": (2051, 60_000),
    "train-labels-idx1-ubyte": (2049, 60_000),
    "t10k-images-idx3-ubyte": (2051, 10_000),
    "t10k-labels-idx1-ubyte": (2049, 10_000),
}


def _file_in(folder: Path, stem: str) -> Path | None:
    for name in (stem, f"{stem}.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def candidate_folders(root: str | Path, system_dir: str | Path | None = SYSTEM_DIR) -> list[Path]:
    """Where the files are looked for, in order: torchvision's layout under ``root``, ``root`` itself, the system
    package's folder."""
    root = Path(root)
    folders = [root / "FashionMNIST" / "raw", root]
    if system_dir:
        folders.append(Path(system_dir))
    return folders


def find_folder(root: str | Path, system_dir: str | Path | None = SYSTEM_DIR) -> Path | None:
    """The first candidate folder that holds all four files (plain or .gz)."""
    for folder in candidate_folders(root, system_dir):
        if all(_file_in(folder, stem) for stem in FILES):
            return folder
    return None


def read_idx(path: Path, stem: str) -> np.ndarray:
    """One idx file, checked by content: its magic number (images or labels), 28×28 images, a decompressed size that
    is what its header says, labels 0..9. Raises ``ValueError`` naming what is wrong."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ValueError(f"{path} cannot be read ({type(err).__name__}: {err})") from None
    magic = FILES[stem][0]
    header_size = 16 if magic == 2051 else 8
    if len(raw) < header_size:
        raise ValueError(f"{path} holds {len(raw)} bytes once decompressed: not even an idx header")
    header = np.frombuffer(raw[:header_size], dtype=">i4")
    if header[0] != magic or (magic == 2051 and tuple(header[2:]) != (SIZE, SIZE)):
        expected = f"{magic}, N" + (f", {SIZE}, {SIZE}" if magic == 2051 else "")
        raise ValueError(f"{path} has the idx header {header.tolist()}, where {stem} has [{expected}]")
    count = int(header[1])
    size = header_size + count * (SIZE * SIZE if magic == 2051 else 1)
    if len(raw) != size:
        raise ValueError(f"{path} holds {len(raw):,} bytes once decompressed, where its header's {count:,} "
                         f"{'images' if magic == 2051 else 'labels'} take {size:,}")
    data = np.frombuffer(raw, dtype=np.uint8, offset=header_size)
    if magic == 2051:
        return data.reshape(count, 1, SIZE, SIZE)
    if count and data.max() > 9:
        raise ValueError(f"{path} holds labels up to {int(data.max())}, where Fashion-MNIST's are 0..9")
    return data


def _download(root: Path) -> None:
    from torchvision import datasets

    try:
        for train in (True, False):
            datasets.FashionMNIST(str(root), train=train, download=True)
    except Exception as err:  # no network (URLError), a proxy, an interrupted or altered download
        raise DataError("root", str(root), f"could not download Fashion-MNIST ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}); install it with `{INSTALL}` "
                        "or check the network") from None


def load_fashion_mnist(root: str, download: bool = False, system_dir: str | None = SYSTEM_DIR):
    """(train_images, train_targets, test_images, test_targets): uint8 (N, 1, 28, 28) / int64 tensors."""
    folder = find_folder(root, system_dir)
    if folder is None and download:
        _download(Path(root))
        folder = find_folder(root, None)
    if folder is None:
        looked = ", ".join(str(f) for f in candidate_folders(root, system_dir))
        raise DataError("root", str(root), f"no Fashion-MNIST files (train-images-idx3-ubyte[.gz] and the other three) "
                        f"in {looked}: install them with `{INSTALL}`, or set dataset.download=true")
    arrays = []
    for stem in FILES:
        try:
            arrays.append(read_idx(_file_in(folder, stem), stem))
        except ValueError as err:
            raise DataError("root", str(root), f"{err}: the file is damaged; reinstall it "
                            f"(`apt-get install --reinstall dataset-fashion-mnist`) or delete it and download "
                            "again") from None
    for images, labels, split in ((arrays[0], arrays[1], "train"), (arrays[2], arrays[3], "t10k")):
        if len(images) != len(labels) or len(images) == 0:
            raise DataError("root", str(root), f"{folder} holds {len(images):,} {split} images and {len(labels):,} "
                            "labels: one label per image is needed; reinstall the files")
        official = FILES[f"{split}-labels-idx1-ubyte"][1]
        if len(images) != official:
            log.warning("%s holds %d %s images, not the release's %d", folder, len(images), split, official)
    train_x, train_y, test_x, test_y = (torch.from_numpy(a.copy()) for a in arrays)
    return train_x, train_y.long(), test_x, test_y.long()


def balanced_subset(targets: torch.Tensor, size: int, num_classes: int, seed: int) -> torch.Tensor:
    """Indices of ``size`` images, ``size / num_classes`` of each class, drawn without replacement (sorted)."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in range(num_classes):
        idx = (targets == label).nonzero().flatten()
        chosen.append(idx[torch.randperm(len(idx), generator=generator)[: size // num_classes]])
    return torch.cat(chosen).sort().values


def fashion_mnist(
    root: str,
    download: bool,
    padding: int,
    hflip: bool,
    normalize: str,
    channels: int,
    train_subset: int | None,
    subset_seed: int,
    system_dir: str | None,
    **batching,
) -> DataBundle:
    """Fashion-MNIST with the published protocol's augmentation. ``batching``: the fields of ``loaders.Batching``."""
    if normalize not in ("own", "mnist"):
        raise DataError("normalize", normalize, "own (the training images' mean and std) or mnist (0.1307, 0.3081, "
                        "as the FMix code)")
    if channels not in (1, 3):
        raise DataError("channels", channels, "1 (the grey images) or 3 (the grey plane repeated, for RGB models)")
    if train_subset is not None and not (10 <= train_subset <= 60_000 and train_subset % 10 == 0):
        raise DataError("train_subset", train_subset, "a multiple of 10 from 10 to 60000 (an equal share of each "
                        "class), or null for all 60,000 training images")
    torchvision_dirs = (Path(root) / "FashionMNIST" / "raw", Path(root) / "FashionMNIST")
    made = [p for p in (*torchvision_dirs, Path(root), *Path(root).parents) if not p.exists()]  # a failed download's
    try:
        train_x, train_y, test_x, test_y = load_fashion_mnist(root, download, system_dir)
    except DataError:
        for folder in made:  # innermost first; only the empty folders this attempt created
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    if train_subset is not None and train_subset < len(train_y):
        keep = balanced_subset(train_y, train_subset, len(CLASSES), subset_seed)
        train_x, train_y = train_x[keep], train_y[keep]
    if normalize == "own":
        pixels = train_x.float() / 255
        mean, std = (pixels.mean().item(),), (pixels.std().item(),)
    else:
        mean, std = MNIST_MEAN, MNIST_STD
    if channels == 3:
        train_x, test_x = train_x.expand(-1, 3, -1, -1).contiguous(), test_x.expand(-1, 3, -1, -1).contiguous()
        mean, std = mean * 3, std * 3
    return tensor_bundle("fashion_mnist", (train_x, train_y, test_x, test_y), len(CLASSES), mean, std, padding,
                         hflip, list(CLASSES), **batching)
