"""scikit-learn's bundled handwritten digits (1,797 real 8×8 images, no download), resized to
32×32 RGB so the CIFAR models and pipeline run on them: the offline quickstart's data set.

The split is fixed (seeded by ``split_seed``, stratified by class): 80% train, 20% test.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .loaders import DataBundle, tensor_bundle


def load_digits_tensors(image_size: int, test_fraction: float = 0.2, split_seed: int = 0):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8) in [0, 1]
    images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    targets = torch.tensor(digits.target, dtype=torch.long)
    generator = torch.Generator().manual_seed(split_seed)
    test_mask = torch.zeros(len(targets), dtype=torch.bool)
    for label in targets.unique():  # stratified split
        idx = (targets == label).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        test_mask[idx[: round(len(idx) * test_fraction)]] = True
    return images[~test_mask], targets[~test_mask], images[test_mask], targets[test_mask]


def digits(image_size: int, padding: int, hflip: bool, **batching) -> DataBundle:
    """Digits with a small random crop; no flips by default (a flipped 2 is not a 2).
    ``batching``: the fields of ``loaders.Batching``."""
    splits = load_digits_tensors(image_size)
    train = splits[0].float() / 255
    mean, std = tuple(train.mean((0, 2, 3)).tolist()), tuple(train.std((0, 2, 3)).tolist())
    return tensor_bundle("digits", splits, 10, mean, std, padding, hflip, [str(d) for d in range(10)], **batching)
