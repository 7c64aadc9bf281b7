"""Small data sets written in the real on-disk formats: CIFAR's pickled batches (python
version) and an ImageFolder of JPEGs."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def _images(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)


def write_cifar10(root: Path, train_per_batch: int = 20, test: int = 31, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batches = [f"data_batch_{i}" for i in range(1, 6)]
    for name, n in [(b, train_per_batch) for b in batches] + [("test_batch", test)]:
        entry = {"batch_label": name, "labels": rng.integers(0, 10, n).tolist(), "data": _images(n, rng),
                 "filenames": [f"{name}_{i}.png" for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}, f)
    return folder


def write_cifar100(root: Path, train: int = 100, test: int = 31, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", train), ("test", test)):
        entry = {"fine_labels": rng.integers(0, 100, n).tolist(), "coarse_labels": rng.integers(0, 20, n).tolist(),
                 "data": _images(n, rng), "filenames": [f"{name}_{i}.png" for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)],
                     "coarse_label_names": [f"s{i}" for i in range(20)]}, f)
    return folder


def write_imagefolder(root: Path, classes: int = 3, train_per_class: int = 4, val_per_class: int = 3,
                      size: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            folder = Path(root) / split / f"n{c:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 256, size=(size, size + 7, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"img_{i}.JPEG", quality=90)
    return Path(root)


def write_cub(root: Path, classes: int = 3, train_per_class: int = 2, test_per_class: int = 2, seed: int = 0) -> Path:
    """CUB-200-2011's published layout: images.txt, image_class_labels.txt, train_test_split.txt,
    bounding_boxes.txt (x y width height), classes.txt and images/<class>/<file>.jpg."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "CUB_200_2011"
    lines = {name: [] for name in ("images", "image_class_labels", "train_test_split", "bounding_boxes", "classes")}
    image_id = 0
    for c in range(classes):
        name = f"{c + 1:03d}.Bird_{c}"
        lines["classes"].append(f"{c + 1} {name}")
        (folder / "images" / name).mkdir(parents=True, exist_ok=True)
        for i in range(train_per_class + test_per_class):
            image_id += 1
            width, height = 50 + 3 * i, 40
            pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "images" / name / f"bird_{i}.jpg", quality=90)
            lines["images"].append(f"{image_id} {name}/bird_{i}.jpg")
            lines["image_class_labels"].append(f"{image_id} {c + 1}")
            lines["train_test_split"].append(f"{image_id} {int(i < train_per_class)}")
            lines["bounding_boxes"].append(f"{image_id} 5.0 4.0 20.0 {10.0 + i}")
    for name, content in lines.items():
        (folder / f"{name}.txt").write_text("\n".join(content) + "\n")
    return folder


def write_imagenet_boxes(root: Path, classes: int = 2, per_class: int = 2, seed: int = 0) -> Path:
    """An ImageFolder (train/, val/) and the ILSVRC per-image XML annotations of val/ in val_boxes/."""
    write_imagefolder(root, classes=classes, train_per_class=per_class, val_per_class=per_class, seed=seed)
    (Path(root) / "val_boxes").mkdir(exist_ok=True)
    for n, old in enumerate(sorted((Path(root) / "val").rglob("*.JPEG")), start=1):
        image = old.with_name(f"ILSVRC2012_val_{n:08d}.JPEG")  # validation file names are unique
        old.rename(image)
        width, height = Image.open(image).size
        objects = "".join(f"<object><name>{image.parent.name}</name><bndbox><xmin>{x}</xmin><ymin>2</ymin>"
                          f"<xmax>{x + 10}</xmax><ymax>20</ymax></bndbox></object>" for x in (1, 15))
        (Path(root) / "val_boxes" / f"{image.stem}.xml").write_text(
            f"<annotation><filename>{image.stem}</filename><size><width>{width}</width><height>{height}</height>"
            f"<depth>3</depth></size>{objects}</annotation>")
    return Path(root)
