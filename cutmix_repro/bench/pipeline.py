"""Section 2: the CIFAR input pipeline: our on-device batched crop and flip against torchvision's CIFAR data set
with the official PIL transforms in a DataLoader."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .common import median_time


def _write_cifar10(root: Path, num_images: int) -> None:
    import pickle

    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    per_batch = max(num_images // 5, 1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = per_batch if name != "test_batch" else 16
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         "labels": rng.integers(0, 10, n).tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)


def bench_cifar_pipeline(num_images: int, batch_size: int, workers: int, min_run_time: float, device="cpu") -> dict:
    from torch.utils.data import DataLoader
    from torchvision import transforms as T

    from ..data import cifar
    from ..data.transforms import CIFAR_MEAN, CIFAR_STD

    with tempfile.TemporaryDirectory() as tmp:
        _write_cifar10(Path(tmp), num_images)
        official = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                              T.Normalize(CIFAR_MEAN, CIFAR_STD)])
        dataset = _unchecked_cifar10(tmp, official)  # torchvision's CIFAR10, MD5 check moved out
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                            persistent_workers=workers > 0)
        n = len(dataset)

        def torchvision_epoch():
            for x, y in loader:
                x.to(device), y.to(device)

        ours = cifar("cifar10", root=tmp, download=False, verify_md5=False, padding=4, hflip=True,
                     batch_size=batch_size, device=device)

        def ours_epoch():
            for _ in ours.train:
                pass

        t_tv = median_time(torchvision_epoch, min_run_time)
        t_ours = median_time(ours_epoch, min_run_time)
    return {"images": n, "batch_size": batch_size, "workers": workers, "ours_images_per_s": n / t_ours,
            "torchvision_images_per_s": n / t_tv, "speedup": t_tv / t_ours}

def _unchecked_cifar10(root, transform):
    """torchvision's CIFAR10 data set over files that are not the official release (no MD5 check)."""
    from torch.utils.data import Dataset

    from ..data import load_cifar

    train_x, train_y, _, _ = load_cifar("cifar10", root, download=False, verify_md5=False)
    hwc, labels = train_x.permute(0, 2, 3, 1).contiguous().numpy(), train_y.tolist()  # torchvision's layout

    class Official(Dataset):  # torchvision.datasets.CIFAR10.__getitem__: a PIL image, then the transform
        def __len__(self):
            return len(labels)

        def __getitem__(self, i):
            from PIL import Image

            return transform(Image.fromarray(hwc[i])), labels[i]

    return Official()
