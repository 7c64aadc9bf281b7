"""MS-COCO captions for Table 10's captioning, read through torchvision's ``CocoCaptions`` from the standard
layout (``ROOT/train2014``, ``ROOT/val2014``, ``ROOT/annotations/captions_{train,val}2014.json``). The folder
and the captions file are checked when the data set is built: a missing one is one error line."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..errors import DataError


class Captions(Dataset):
    """Images with captions. ``train=True``: (image, one of its captions, drawn with torch's RNG);
    ``train=False``: (image, image id). ``captions[image id]`` lists every reference caption."""

    def __init__(self, root: str | Path, images: str, captions: str, transform, train: bool):
        from torchvision.datasets import CocoCaptions

        root = Path(root)
        folder, annotations = root / images, root / captions
        if not folder.is_dir():
            raise DataError("task.data.root", str(root), f"no image folder {images}/ there: give the folder that "
                            f"holds {images}/ and {captions}")
        if not annotations.is_file():
            raise DataError("task.data.root", str(root), f"no captions file {captions} there")
        try:
            raw = json.loads(annotations.read_text())
            self.captions: dict[int, list[str]] = {}
            for ann in raw["annotations"]:
                self.captions.setdefault(int(ann["image_id"]), []).append(str(ann["caption"]))
            known = {int(image["id"]) for image in raw["images"]}
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise DataError("captions", str(annotations), f"not a COCO captions file ({type(err).__name__}: {err})") \
                from None
        unknown = sorted(set(self.captions) - known)
        if unknown:
            raise DataError("captions", str(annotations), f"a caption of image id {unknown[0]}, which its images "
                            "list does not have")
        if not self.captions:
            raise DataError("captions", str(annotations), "it holds no captions")
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            self.coco = CocoCaptions(str(folder), str(annotations), transform=transform)
        self.positions = [i for i, image_id in enumerate(self.coco.ids) if image_id in self.captions]
        self.ids = [self.coco.ids[i] for i in self.positions]
        self.train = train

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int):
        image, options = self.coco[self.positions[index]]
        if not self.train:
            return image, self.ids[index]
        return image, options[int(torch.randint(len(options), ()))]


def transforms(image_size: int):
    """(train, test): resize the shorter side to 256/224 of the size, random crop + flip / centre crop, ImageNet
    normalisation."""
    from torchvision import transforms as T

    resize = round(image_size * 256 / 224)
    normalize = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    train = T.Compose([T.Resize(resize), T.RandomCrop(image_size), T.RandomHorizontalFlip(), T.ToTensor(), normalize])
    test = T.Compose([T.Resize(resize), T.CenterCrop(image_size), T.ToTensor(), normalize])
    return train, test
