"""Real objects with exact boxes: Fashion-MNIST's photographs placed on a larger canvas
(``dataset=fashion_mnist_boxes``).

Each image (a real 28×28 grey photograph of one garment, centred on a black background) is resized to a side
drawn uniformly from ``scale_min``·28 … ``scale_max``·28 pixels (bilinear, antialiased, rounded to 8 bits) and put
at a uniformly drawn place on a ``canvas``×``canvas`` background. The object is its own pixels: those of the
resized photograph that are not black (Fashion-MNIST's background is exactly 0); they replace the background,
everything else of the photograph's square is background. Its box is the tight box of those pixels
(``x1, y1, x2, y2``, the end exclusive, as ``synthetic_boxes``), so it is exact by construction.

``background``:
- ``noise`` (the default): each pixel uniform in 0 … ``background_level``, drawn per image: it carries no class
  and no shape, so a localization map that finds the object has found it from what the classifier learned, not
  from the edge of a black square; and the object's dark pixels stay darker than much of the noise.
- ``plain``: black (0), Fashion-MNIST's own background: any brightness map then finds the object.
Other images' texture is not offered: pieces of other garments would carry class evidence outside the box.

Everything is drawn from one generator seeded by ``data_seed``: the same seed, the same canvases. The training
set is a class-balanced subset (``train_subset``), the test set too (``test_subset``), both drawn with
``subset_seed`` from the real files (``dataset=fashion_mnist``'s reader: ``root``, Debian's package, or download).
Test batches carry their boxes, so the CAM localization of every epoch (``cutmix_repro.localization``),
``figure1`` and the WSOL report read it as they read ``synthetic_boxes`` and ``imagenet_boxes``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError
from .fashion_mnist import CLASSES, SIZE, balanced_subset, load_fashion_mnist
from .loaders import DataBundle, tensor_bundle

BACKGROUNDS = ("noise", "plain")


def place_on_canvas(objects: Tensor, canvas: int, scale_min: float, scale_max: float, background: str,
                    background_level: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``objects`` (N, 1, 28, 28) uint8 on canvases: the images (N, 1, canvas, canvas) uint8 and each object's box
    (N, 1, 4) float (x1, y1, x2, y2; x2, y2 exclusive)."""
    n = len(objects)
    low, high = max(1, round(SIZE * scale_min)), round(SIZE * scale_max)
    sides = torch.randint(low, high + 1, (n,), generator=generator)
    room = (canvas - sides + 1).unsqueeze(1)  # places for the square's corner (y, x): 0 … canvas − side
    corners = (torch.rand(n, 2, generator=generator) * room).floor().long().minimum(room - 1)
    noise = torch.Generator().manual_seed(int(torch.randint(2**62, (), generator=generator)))  # drawn either way:
    if background == "noise":  # the background never moves the objects
        images = torch.randint(0, background_level + 1, (n, 1, canvas, canvas), generator=noise, dtype=torch.uint8)
    else:
        images = torch.zeros(n, 1, canvas, canvas, dtype=torch.uint8)
    boxes = torch.zeros(n, 1, 4)
    for side in sides.unique().tolist():
        chosen = (sides == side).nonzero().flatten()
        resized = F.interpolate(objects[chosen].float(), size=(side, side), mode="bilinear", align_corners=False,
                                antialias=True).round().clamp(0, 255).to(torch.uint8)
        for obj, i in zip(resized, chosen.tolist()):
            y, x = corners[i].tolist()
            region = images[i, :, y:y + side, x:x + side]
            own = obj > 0
            region[own] = obj[own]
            rows, cols = own[0].any(1).nonzero().flatten(), own[0].any(0).nonzero().flatten()
            if len(rows):
                boxes[i, 0] = torch.tensor([x + cols.min(), y + rows.min(), x + cols.max() + 1, y + rows.max() + 1])
    return images, boxes


def _check(canvas, scale_min, scale_max, background, background_level, train_subset, test_subset) -> None:
    if not (isinstance(scale_min, int | float) and isinstance(scale_max, int | float) and 0 < scale_min <= scale_max):
        raise DataError("scale_min", scale_min, f"0 < scale_min <= scale_max (here {scale_max}): the object's side "
                        "is drawn from scale_min·28 … scale_max·28 pixels")
    if not isinstance(canvas, int) or canvas < round(SIZE * scale_max):
        raise DataError("canvas", canvas, f"a side in pixels of at least scale_max·28 = {round(SIZE * scale_max)}, "
                        "so that every object fits")
    if background not in BACKGROUNDS:
        raise DataError("background", background, "noise (uniform noise up to background_level) or plain (black)")
    if not isinstance(background_level, int) or not 0 <= background_level <= 255:
        raise DataError("background_level", background_level, "an 8-bit level 0…255 (the noise's maximum)")
    for key, value, most in (("train_subset", train_subset, 60_000), ("test_subset", test_subset, 10_000)):
        if value is not None and not (isinstance(value, int) and 10 <= value <= most and value % 10 == 0):
            raise DataError(key, value, f"a multiple of 10 from 10 to {most} (an equal share of each class), or "
                            f"null for all {most:,}")


def fashion_mnist_boxes(root: str, download: bool, system_dir: str | None, canvas: int, scale_min: float,
                        scale_max: float, background: str, background_level: int, train_subset: int | None,
                        test_subset: int | None, subset_seed: int, data_seed: int, padding: int, hflip: bool,
                        **batching) -> DataBundle:
    """Fashion-MNIST's objects on canvases, with the test objects' boxes (module docstring)."""
    _check(canvas, scale_min, scale_max, background, background_level, train_subset, test_subset)
    train_x, train_y, test_x, test_y = load_fashion_mnist(root, download, system_dir)
    if train_subset is not None and train_subset < len(train_y):
        keep = balanced_subset(train_y, train_subset, len(CLASSES), subset_seed)
        train_x, train_y = train_x[keep], train_y[keep]
    if test_subset is not None and test_subset < len(test_y):
        keep = balanced_subset(test_y, test_subset, len(CLASSES), subset_seed)
        test_x, test_y = test_x[keep], test_y[keep]
    generator = torch.Generator().manual_seed(data_seed)
    train_images, _ = place_on_canvas(train_x, canvas, scale_min, scale_max, background, background_level, generator)
    test_images, test_boxes = place_on_canvas(test_x, canvas, scale_min, scale_max, background, background_level,
                                              generator)
    pixels = train_images.float() / 255
    mean, std = (pixels.mean().item(),), (pixels.std().item(),)
    return tensor_bundle("fashion_mnist_boxes", (train_images, train_y, test_images, test_y), len(CLASSES), mean, std,
                         padding, hflip, list(CLASSES), val_boxes=test_boxes, **batching)
