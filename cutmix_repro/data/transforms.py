"""The paper's augmentations (§4.1 of the paper; the official train.py's transforms).

CIFAR: RandomCrop(32, padding=4) + horizontal flip + normalisation, done here on whole uint8
batches on the training device (``crop_flip_padded``, ``normalize``) instead of per image in PIL:
the same as torchvision's RandomCrop then RandomHorizontalFlip given the same offsets and flips,
with the zero padding before normalisation that PIL applies.
ImageNet: the official torchvision pipeline with ColorJitter and AlexNet's PCA lighting.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision import transforms as T

CIFAR_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# AlexNet's PCA of ImageNet RGB, as in the official code's Lighting transform
IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


def draw_crop_flip(n: int, padding: int, hflip: bool, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Per-image crop offsets in [0, 2·padding] (as RandomCrop) and flip decisions (p = 0.5)."""
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5 if hflip else torch.zeros(n, dtype=torch.bool)
    return offsets, flips


def crop_flip_padded(padded: Tensor, offsets: Tensor, flips: Tensor, height: int, width: int) -> Tensor:
    """Crop (height, width) windows at ``offsets`` from already padded images, flipping where
    ``flips``: one ``torch.gather`` over the flattened pixels, no per-image Python."""
    n, c, ph, pw = padded.shape
    dev = padded.device
    rows = offsets[:, 0:1].to(dev) + torch.arange(height, device=dev)  # (N, H)
    cols = torch.arange(width, device=dev).expand(n, width)
    cols = torch.where(flips.to(dev).view(n, 1), width - 1 - cols, cols) + offsets[:, 1:2].to(dev)  # (N, W)
    flat = (rows.view(n, height, 1) * pw + cols.view(n, 1, width)).view(n, 1, height * width)
    out = torch.gather(padded.reshape(n, c, ph * pw), 2, flat.expand(n, c, height * width))
    return out.view(n, c, height, width)


def normalize(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 (N, C, H, W) → float, (x/255 − mean)/std; ``mean``/``std`` shaped (1, C, 1, 1)."""
    return (images.float() / 255.0 - mean) / std


class Lighting:
    """AlexNet-style PCA lighting noise (Krizhevsky et al., 2012), std 0.1, on a [0, 1] tensor."""

    def __init__(self, std: float):
        self.std = std
        self.eigval = torch.tensor(IMAGENET_PCA_EIGVAL)
        self.eigvec = torch.tensor(IMAGENET_PCA_EIGVEC)

    def __call__(self, img: Tensor) -> Tensor:
        if self.std == 0:
            return img
        alpha = torch.randn(3) * self.std
        rgb = (self.eigvec * alpha.view(1, 3) * self.eigval.view(1, 3)).sum(1)
        return img + rgb.view(3, 1, 1)

    def __repr__(self) -> str:
        return f"Lighting(std={self.std})"


def imagenet_train_transform(image_size: int, augment=None) -> T.Compose:
    """The official ImageNet training augmentation (the authors' train.py); ``augment`` (``data.augment.Augment``,
    not the paper's) adds its policy after the flip and its random erasing after the normalisation."""
    policy = augment.policy_transform() if augment is not None else None
    erasing = augment.erasing_transform() if augment is not None else None
    steps = [
        T.RandomResizedCrop(image_size),
        T.RandomHorizontalFlip(),
        *([policy] if policy else []),
        T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
        T.ToTensor(),
        Lighting(0.1),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        *([erasing] if erasing else []),
    ]
    return T.Compose(steps)


def imagenet_eval_transform(image_size: int, resize: int) -> T.Compose:
    """Resize (256), centre crop (224), normalise."""
    return T.Compose(
        [T.Resize(resize), T.CenterCrop(image_size), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )
