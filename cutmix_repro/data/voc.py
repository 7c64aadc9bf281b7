"""Pascal VOC detection (Table 10): VOC2007+2012 trainval to train, VOC2007 test to evaluate, from the
standard ``VOCdevkit`` layout (``ROOT/VOCdevkit/VOC2007/{JPEGImages, Annotations, ImageSets/Main}``), read
with torchvision's ``VOCDetection`` (nothing is downloaded).

Every annotation is parsed and checked when the data set is built, before anything is written: a missing
folder or list, an annotation without objects, or a box outside its image is one error line naming the file.
Each object keeps its ``difficult`` flag; training leaves difficult objects out (as ssd.pytorch and
jwyang/faster-rcnn.pytorch do) and evaluation keeps them, flagged, for the devkit's rule
(``evaluation/voc_ap.py``). VOC's boxes are 1-based inclusive pixel indices; they become continuous
coordinates (xmin − 1, ymin − 1, xmax, ymax), so a box's width is the devkit's ``xmax − xmin + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..errors import DataError

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")


@dataclass
class Annotation:
    image_id: str
    width: int
    height: int
    boxes: torch.Tensor      # float32 N×4, continuous (x0, y0, x1, y1)
    labels: torch.Tensor     # int64 N, 1…20 (0 is the background)
    difficult: torch.Tensor  # bool N


def parse_split(split: str) -> tuple[str, str]:
    """``"2007-trainval"`` → ("2007", "trainval")."""
    year, _, image_set = split.partition("-")
    if year not in ("2007", "2012") or image_set not in ("train", "trainval", "val", "test"):
        raise DataError("task.data.splits", split, "a year-set such as 2007-trainval, 2012-trainval or 2007-test")
    return year, image_set


def annotation(target: dict, path: str) -> Annotation:
    """One image's objects from torchvision's parsed XML, checked."""
    node = target["annotation"]
    objects = node.get("object", [])
    if not objects:
        raise DataError("annotation", path, "it has no objects: every VOC detection image has at least one")
    width, height = int(node["size"]["width"]), int(node["size"]["height"])
    boxes, labels, difficult = [], [], []
    for obj in objects:
        name = obj["name"].strip()
        if name not in VOC_CLASSES:
            raise DataError("annotation", path, f"object class {name!r} is not one of VOC's 20 classes")
        b = obj["bndbox"]
        x0, y0, x1, y1 = (float(b[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
        if not (1 <= x0 <= x1 <= width and 1 <= y0 <= y1 <= height):
            raise DataError("annotation", path, f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) of {name!r} is outside its "
                            f"{width}×{height} image (VOC boxes are 1-based pixels within the image)")
        boxes.append([x0 - 1, y0 - 1, x1, y1])
        labels.append(VOC_CLASSES.index(name) + 1)
        difficult.append(str(obj.get("difficult", "0")).strip() == "1")
    return Annotation(node["filename"], width, height, torch.tensor(boxes, dtype=torch.float32),
                      torch.tensor(labels, dtype=torch.int64), torch.tensor(difficult, dtype=torch.bool))


class VOCBoxes(Dataset):
    """The images of ``splits`` (``["2007-trainval", "2012-trainval"]``) with their checked annotations.

    ``transform(image, target)`` is a torchvision v2 transform on a tv_tensors image and a target of
    ``boxes`` (BoundingBoxes) and ``labels``; ``keep_difficult=False`` drops difficult objects."""

    def __init__(self, root: str | Path, splits: list[str], keep_difficult: bool, transform=None):
        from torchvision.datasets import VOCDetection

        root = Path(root)
        if not (root / "VOCdevkit").is_dir():
            raise DataError("task.data.root", str(root), "no VOCdevkit folder there: give the folder that holds "
                            "VOCdevkit/VOC2007 (and VOC2012), unpacked from the VOC tar files")
        self.parts, self.items = [], []
        for split in splits:
            year, image_set = parse_split(split)
            folder = root / "VOCdevkit" / f"VOC{year}"
            listing = folder / "ImageSets" / "Main" / f"{image_set}.txt"
            if not listing.is_file():
                raise DataError("task.data.root", str(root), f"no {listing.relative_to(root)}: is VOC{year} "
                                f"{image_set} unpacked there?")
            voc = VOCDetection(str(root), year=year, image_set=image_set, download=False)
            self.parts.append(voc)
            for index, path in enumerate(voc.annotations):
                if not Path(path).is_file():
                    raise DataError("annotation", path, "missing: the image set lists it, Annotations/ lacks it")
                if not Path(voc.images[index]).is_file():
                    raise DataError("image", voc.images[index], "missing: the image set lists it")
                self.items.append((voc, index, annotation(voc.parse_voc_xml(_xml(path)), path)))
        self.keep_difficult, self.transform = keep_difficult, transform

    def __len__(self) -> int:
        return len(self.items)

    def target(self, index: int) -> Annotation:
        return self.items[index][2]

    def __getitem__(self, index: int):
        from PIL import Image
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional as TF

        voc, i, ann = self.items[index]
        with Image.open(voc.images[i]) as pil:
            image = tv_tensors.Image(TF.pil_to_tensor(pil.convert("RGB")))
        keep = torch.ones_like(ann.difficult) if self.keep_difficult else ~ann.difficult
        target = {"boxes": tv_tensors.BoundingBoxes(ann.boxes[keep], format="XYXY", canvas_size=image.shape[-2:]),
                  "labels": ann.labels[keep], "difficult": ann.difficult[keep], "index": index}
        if self.transform is not None:
            image, target = self.transform(image, target)
        return image, target


def _xml(path: str):
    import xml.etree.ElementTree as ET

    return ET.parse(path).getroot()


def collate(batch):
    """Detection batches are lists: images of different sizes, targets of different lengths."""
    images, targets = zip(*batch)
    return list(images), list(targets)


def train_transform(kind: str, mean: tuple[float, ...]):
    """torchvision v2 augmentation: SSD's (photometric distortion, zoom out, IoU crop, flip: torchvision's SSD
    recipe, as ssd.pytorch's SSDAugmentation) or Faster R-CNN's (flip). Resizing is the model's own."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    steps = [v2.RandomPhotometricDistort(p=1.0),
             v2.RandomZoomOut(fill={tv_tensors.Image: [round(255 * m) for m in mean], "others": 0}),
             v2.RandomIoUCrop()] if kind == "ssd" else []
    return v2.Compose([*steps, v2.RandomHorizontalFlip(0.5), v2.SanitizeBoundingBoxes(labels_getter=_labels),
                       v2.ToDtype(torch.float32, scale=True)])


def test_transform():
    from torchvision.transforms import v2

    return v2.ToDtype(torch.float32, scale=True)


def _labels(inputs):
    """SanitizeBoundingBoxes removes the labels and difficult flags of the boxes it removes."""
    target = inputs[1]
    return target["labels"], target["difficult"]
