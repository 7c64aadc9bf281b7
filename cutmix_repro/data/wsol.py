"""Data sets with object boxes, for weakly supervised localization (paper §4.2, Table 9, appendix B).

- ``cub``: CUB-200-2011 in its published layout (``images.txt``, ``image_class_labels.txt``,
  ``train_test_split.txt``, ``bounding_boxes.txt``, ``images/``; ``classes.txt`` for the names).
- ``imagenet_boxes``: an ImageNet ImageFolder (``train/``, ``val/``) with the ILSVRC per-image XML
  annotations of the validation images (``val_boxes/<image>.xml`` by default).
- ``synthetic_boxes``: in-memory images of one object on a noisy background, its box known: a
  localization task a CPU learns in minutes.

Appendix B's images: resized to 256×256 (not keeping the aspect ratio), a random 224 crop for
training (with a horizontal flip, which the appendix does not mention but the WSOL code it follows
uses), the centre 224 crop for testing. A test batch is (images, labels, boxes): boxes (N, G, 4) as
x1, y1, x2, y2 in the crop's pixels, padded with rows of −1 where an image has fewer boxes. Each
defect of a folder is one line naming the file, line or image.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms as T

from ..errors import ConfigError, DataError
from .augment import check_supported
from .imagenet import image_folder
from .loaders import UNREADABLE, Batching, DataBundle, device_loader, resolve_workers, tensor_bundle
from .transforms import IMAGENET_MEAN, IMAGENET_STD

CUB_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt")


def wsol_train_transform(image_size: int, resize: int) -> T.Compose:
    return T.Compose([T.Resize((resize, resize)), T.RandomCrop(image_size), T.RandomHorizontalFlip(), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def wsol_eval_transform(image_size: int, resize: int) -> T.Compose:
    return T.Compose([T.Resize((resize, resize)), T.CenterCrop(image_size), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def eval_boxes(boxes: Tensor, width: int, height: int, image_size: int, resize: int) -> Tensor:
    """Boxes (G, 4) in an original image's pixels → in the pixels of its test crop (resized to resize ×
    resize, centre crop image_size): x · resize / width − offset in float64, clipped to [0, image_size],
    truncated to integers (as clovaai/wsolevaluation's ``resize_bbox``, which resizes without a crop)."""
    scale = torch.tensor([width, height, width, height], dtype=torch.float64)
    offset = int(round((resize - image_size) / 2.0))  # where torchvision's CenterCrop starts
    mapped = boxes.double() * resize / scale - offset
    return mapped.clamp(0, image_size).trunc().float()


def pad_boxes(boxes: list[Tensor]) -> Tensor:
    most = max(len(b) for b in boxes)
    return torch.stack([F.pad(b, (0, 0, 0, most - len(b)), value=-1.0) for b in boxes])


def collate_with_boxes(batch):
    images, labels, boxes = zip(*batch)
    return torch.stack(images), torch.tensor(labels), pad_boxes(list(boxes))


class FileList(Dataset):
    """(path, label) pairs read through a transform; an unreadable file comes back as a placeholder with
    the target ``-1 - index`` (named by ``DeviceLoader``), as ``imagenet.FileChecked``."""

    def __init__(self, samples: list[tuple[str, int]], transform):
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int):
        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                return self.transform(img.convert("RGB")), label
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            return self.transform(Image.new("RGB", (8, 8))), UNREADABLE - index

    __getitem__ = load


class BoxedFileList(FileList):
    """Test images with their boxes (in original pixels), mapped into the test crop."""

    def __init__(self, samples: list[tuple[str, int]], boxes: list[Tensor], sizes: list[tuple[int, int]],
                 image_size: int, resize: int):
        super().__init__(samples, wsol_eval_transform(image_size, resize))
        self.boxes = [eval_boxes(b, w, h, image_size, resize) for b, (w, h) in zip(boxes, sizes)]

    def __getitem__(self, index: int):
        image, label = self.load(index)
        return image, label, self.boxes[index]


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a whitespace-separated text file, blank lines skipped."""
    return [(n, line.split()) for n, line in enumerate(path.read_text().splitlines(), start=1) if line.strip()]


def _by_id(folder: Path, name: str, fields: int, known: dict | None) -> dict[int, list[str]]:
    out = {}
    for n, parts in _lines(folder / name):
        if len(parts) < fields or not parts[0].isdigit():
            raise DataError("root", str(folder), f"{name} line {n} is malformed: {' '.join(parts)!r}")
        image_id = int(parts[0])
        if known is not None and image_id not in known:
            raise DataError("root", str(folder), f"{name} line {n}: unknown image id {image_id} (not in images.txt)")
        out[image_id] = parts[1:]
    return out


def image_size_of(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError) as err:
        raise DataError("root", str(path.parent), f"{path} is not a readable image ({type(err).__name__})") from None


def check_box(box: list[float], size: tuple[int, int], where: str, folder: Path) -> None:
    x1, y1, x2, y2 = box
    width, height = size
    if not (-1 <= x1 < x2 <= width + 1 and -1 <= y1 < y2 <= height + 1):
        raise DataError("root", str(folder), f"{where}: box {box} lies outside the {width}×{height} image")


def read_cub(root: Path) -> tuple[Path, list, list, list[str] | None]:
    """(folder, train samples, test samples with boxes and sizes, class names), every file checked."""
    folder = root / "CUB_200_2011" if (root / "CUB_200_2011").is_dir() else root
    for name in (*CUB_FILES, "images"):
        if not (folder / name).exists():
            raise DataError("root", str(root), f"no {name} in {folder} (CUB-200-2011's published layout: "
                            f"{', '.join(CUB_FILES)}, images/)")
    images = {int(parts[0]): parts[1] for _, parts in _lines(folder / "images.txt") if parts}
    labels = _by_id(folder, "image_class_labels.txt", 2, images)
    split = _by_id(folder, "train_test_split.txt", 2, images)
    boxes = _by_id(folder, "bounding_boxes.txt", 5, images)
    train, test = [], []
    for image_id, name in sorted(images.items()):
        for file, table in (("image_class_labels.txt", labels), ("train_test_split.txt", split)):
            if image_id not in table:
                raise DataError("root", str(folder), f"image id {image_id} ({name}) has no line in {file}")
        path = folder / "images" / name
        if not path.is_file():
            raise DataError("root", str(folder), f"images.txt names {name}, which is not in images/")
        label = int(labels[image_id][0]) - 1  # 1-based in the file
        if split[image_id][0] == "1":
            train.append((str(path), label))
            continue
        if image_id not in boxes:
            raise DataError("root", str(folder), f"test image id {image_id} ({name}) has no line in bounding_boxes.txt")
        x, y, w, h = (float(v) for v in boxes[image_id][:4])
        size = image_size_of(path)
        check_box([x, y, x + w, y + h], size, f"bounding_boxes.txt, image id {image_id}", folder)
        test.append((str(path), label, torch.tensor([[x, y, x + w, y + h]]), size))
    names = None
    if (folder / "classes.txt").is_file():
        names = [" ".join(parts[1:]) for _, parts in sorted(_lines(folder / "classes.txt"), key=lambda p: int(p[1][0]))]
    return folder, train, test, names


def read_xml_boxes(path: Path) -> tuple[Tensor, tuple[int, int]]:
    """The boxes (G, 4) and the image size of one ILSVRC (PASCAL VOC) annotation file."""
    try:
        tree = ET.parse(path).getroot()
        size = (int(tree.findtext("size/width")), int(tree.findtext("size/height")))
        boxes = [[float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")]
                 for obj in tree.iter("object")]
    except (ET.ParseError, TypeError, ValueError) as err:
        raise DataError("boxes", str(path.parent), f"{path.name} is not an ILSVRC annotation ({err})") from None
    if not boxes:
        raise DataError("boxes", str(path.parent), f"{path.name} has no object box")
    for box in boxes:
        check_box(box, size, path.name, path.parent)
    return torch.tensor(boxes), size


def _bundle(name, train_ds, test_ds, num_classes, class_names, num_workers, prefetch_factor, batching) -> DataBundle:
    if len(test_ds) == 0 or len(train_ds) == 0:
        raise DataError("root", name, "no training or no test images")
    feed, workers = Batching(**batching), resolve_workers(num_workers)
    check_supported(feed.augment, name)
    return DataBundle(name, device_loader(train_ds, True, feed, workers, prefetch_factor),
                      device_loader(test_ds, False, feed, workers, prefetch_factor, collate_with_boxes), num_classes,
                      IMAGENET_MEAN, IMAGENET_STD, class_names)


def cub(root: str, image_size: int, resize: int, num_workers: int | str, prefetch_factor: int,
        **batching) -> DataBundle:
    """CUB-200-2011 (200 classes): the official train/test split, test images with their boxes."""
    _, train, test, names = read_cub(Path(root))
    test_ds = BoxedFileList([(p, label) for p, label, _, _ in test], [b for _, _, b, _ in test],
                            [s for *_, s in test], image_size, resize)
    num_classes = max(label for _, label in train + [(p, label) for p, label, _, _ in test]) + 1
    return _bundle("cub", FileList(train, wsol_train_transform(image_size, resize)), test_ds, num_classes, names,
                    num_workers, prefetch_factor, batching)


def imagenet_boxes(root: str, boxes: str | None, image_size: int, resize: int, num_workers: int | str,
                   prefetch_factor: int, **batching) -> DataBundle:
    """ImageNet's train/ ImageFolder for training; val/ with the per-image XML boxes (``boxes``, by
    default ``root/val_boxes``) for testing."""
    root_path = Path(root)
    train = image_folder(root_path / "train", wsol_train_transform(image_size, resize))
    val = image_folder(root_path / "val", None)
    box_dir = Path(boxes) if boxes else root_path / "val_boxes"
    if not box_dir.is_dir():
        raise DataError("boxes", str(box_dir), "no folder of ILSVRC validation annotations (<image>.xml) there")
    if train.classes != val.classes:
        raise DataError("root", root, "train/ and val/ have different class folders")
    samples, box_list, sizes = [], [], []
    for path, label in val.samples:
        xml = box_dir / f"{Path(path).stem}.xml"
        if not xml.is_file():
            raise DataError("boxes", str(box_dir), f"no {xml.name} for the validation image {path}")
        b, size = read_xml_boxes(xml)
        samples.append((path, label))
        box_list.append(b)
        sizes.append(size)
    test_ds = BoxedFileList(samples, box_list, sizes, image_size, resize)
    return _bundle("imagenet_boxes", train, test_ds, len(train.classes), list(train.classes), num_workers,
                    prefetch_factor, batching)


def make_synthetic_boxes(textures: Tensor, count: int, image_size: int, generator: torch.Generator):
    """``count`` images (uint8, 3 × image_size²): noise, and one class's texture (a square) at a random
    place; the labels and the boxes (N, 1, 4)."""
    num_classes, size = textures.shape[0], textures.shape[-1]
    labels = torch.randint(num_classes, (count,), generator=generator)
    images = torch.rand(count, 3, image_size, image_size, generator=generator) * 0.3
    corners = torch.randint(0, image_size - size + 1, (count, 2), generator=generator)
    for i in range(count):
        y, x = corners[i].tolist()
        images[i, :, y : y + size, x : x + size] = textures[labels[i]]
    boxes = torch.cat([corners.flip(1), corners.flip(1) + size], 1).float().view(count, 1, 4)
    return (images * 255).round().to(torch.uint8), labels, boxes


def synthetic_boxes(num_classes: int, train_size: int, test_size: int, image_size: int, object_size: int,
                    data_seed: int, padding: int, hflip: bool, **batching) -> DataBundle:
    """In-memory localization data: the class is the object's texture, the box its square."""
    if not 0 < object_size <= image_size:
        raise ConfigError("object_size", object_size, f"a square side in 1..image_size ({image_size})")
    g = torch.Generator().manual_seed(data_seed)
    textures = F.interpolate(torch.rand(num_classes, 3, 4, 4, generator=g), size=(object_size,) * 2, mode="nearest")
    train_x, train_y, _ = make_synthetic_boxes(textures, train_size, image_size, g)
    test_x, test_y, test_boxes = make_synthetic_boxes(textures, test_size, image_size, g)
    half = (0.5, 0.5, 0.5)
    return tensor_bundle("synthetic_boxes", (train_x, train_y, test_x, test_y), num_classes, half, half, padding,
                         hflip, val_boxes=test_boxes, **batching)
