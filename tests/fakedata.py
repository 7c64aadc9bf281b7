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


VOC_OBJECT = """  <object>
    <name>{name}</name>
    <pose>Unspecified</pose>
    <truncated>0</truncated>
    <difficult>{difficult}</difficult>
    <bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>
  </object>
"""


def voc_xml(filename: str, width: int, height: int, objects: list[tuple]) -> str:
    """A VOC annotation: ``objects`` as (class name, xmin, ymin, xmax, ymax, difficult) in VOC's 1-based pixels."""
    body = "".join(VOC_OBJECT.format(name=n, x0=a, y0=b, x1=c, y1=d, difficult=int(diff))
                   for n, a, b, c, d, diff in objects)
    return (f"<annotation>\n  <folder>VOC2007</folder>\n  <filename>{filename}</filename>\n"
            f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>\n"
            f"  <segmented>0</segmented>\n{body}</annotation>\n")


def write_vocdevkit(root: Path, sets: dict[str, dict[str, int]] | None = None, size: tuple[int, int] = (96, 72),
                    seed: int = 0) -> dict[tuple[str, str], list]:
    """A VOCdevkit tree: for each year, JPEGs of ``size`` (w, h) with one or two coloured rectangles on grey,
    their XML (the second object of every third image difficult) and ImageSets/Main lists. ``sets`` is
    {year: {image set: count}}; returns {(year, image id): [objects]} with VOC's 1-based boxes."""
    rng = np.random.default_rng(seed)
    sets = sets or {"2007": {"trainval": 6, "test": 4}, "2012": {"trainval": 4}}
    classes = ("cat", "dog", "car", "person")
    colours = {"cat": (220, 40, 40), "dog": (40, 200, 40), "car": (40, 40, 220), "person": (220, 220, 40)}
    width, height = size
    written = {}
    for year, image_sets in sets.items():
        folder = Path(root) / "VOCdevkit" / f"VOC{year}"
        for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        count = 0
        for image_set, n in image_sets.items():
            ids = []
            for _ in range(n):
                image_id = f"{year}_{count:06d}"
                count += 1
                pixels = np.full((height, width, 3), 128, np.uint8)
                objects = []
                for k in range(1 + count % 2):
                    name = classes[int(rng.integers(len(classes)))]
                    w, h = int(rng.integers(16, width // 2)), int(rng.integers(16, height // 2))
                    x0, y0 = int(rng.integers(1, width - w)), int(rng.integers(1, height - h))
                    pixels[y0 - 1:y0 - 1 + h, x0 - 1:x0 - 1 + w] = colours[name]
                    objects.append((name, x0, y0, x0 + w - 1, y0 + h - 1, k == 1 and count % 3 == 0))
                Image.fromarray(pixels).save(folder / "JPEGImages" / f"{image_id}.jpg", quality=95)
                (folder / "Annotations" / f"{image_id}.xml").write_text(voc_xml(f"{image_id}.jpg", width, height,
                                                                               objects))
                written[(year, image_id)] = objects
                ids.append(image_id)
            (folder / "ImageSets" / "Main" / f"{image_set}.txt").write_text("\n".join(ids) + "\n")
    return written


def write_coco_captions(root: Path, train: int = 8, val: int = 4, size: tuple[int, int] = (64, 48),
                        seed: int = 0) -> dict[str, dict[int, list[str]]]:
    """COCO's captions layout: train2014/ and val2014/ JPEGs and annotations/captions_{train,val}2014.json
    (five captions per image, as COCO). A red image is captioned about a red bus, a blue one about a blue
    boat. Returns {split: {image id: captions}}."""
    import json

    rng = np.random.default_rng(seed)
    phrases = {"red": ["a red bus on the street", "a red bus parked near a road", "the red bus drives down a street",
                       "a big red bus on a city street", "red bus on the road"],
               "blue": ["a blue boat on the water", "a small blue boat in the sea", "the blue boat floats on water",
                        "a blue boat near the shore", "blue boat on a lake"]}
    colours = {"red": (200, 30, 30), "blue": (30, 30, 200)}
    out = {}
    (Path(root) / "annotations").mkdir(parents=True, exist_ok=True)
    next_id = 1
    for split, n in (("train2014", train), ("val2014", val)):
        folder = Path(root) / split
        folder.mkdir(parents=True, exist_ok=True)
        images, annotations, captions = [], [], {}
        for i in range(n):
            image_id = 1000 * (split == "val2014") + i + 1
            kind = ("red", "blue")[i % 2]
            pixels = np.clip(np.array(colours[kind]) + rng.normal(0, 10, (size[1], size[0], 3)), 0, 255)
            name = f"COCO_{split}_{image_id:012d}.jpg"
            Image.fromarray(pixels.astype(np.uint8)).save(folder / name, quality=95)
            images.append({"id": image_id, "file_name": name, "width": size[0], "height": size[1]})
            captions[image_id] = phrases[kind]
            for caption in phrases[kind]:
                annotations.append({"id": next_id, "image_id": image_id, "caption": caption})
                next_id += 1
        (Path(root) / "annotations" / f"captions_{split}.json").write_text(
            json.dumps({"images": images, "annotations": annotations, "info": {}, "licenses": []}))
        out[split] = captions
    return out
