"""Figure 5 of the paper: top-1 error under occlusion, and on in-between-class samples.

- Centre occlusion sets an s×s square at the image centre to zero; boundary occlusion sets everything
  outside it to zero. "Zero" is a zero of the *normalised* input, i.e. the data set's mean colour: the
  value Cutout cuts to in this project (and in Cutout's code), so an occluded region carries no
  signal rather than black pixels. The square of side s starts at ⌊(H − s)/2⌋, ⌊(W − s)/2⌋.
- In-between-class samples: pairs (A, B) of test images of different classes (drawn with replacement,
  ``--pairs`` of them), mixed by Mixup
  (λA + (1 − λ)B, a sweep of λ) and by a centred CutMix square of B in A (a sweep of its side; λ = the
  area left to A); the error counts predictions that are neither A's nor B's class.
"""

from __future__ import annotations

import torch
from torch import Tensor


def centre_mask(size: int, height: int, width: int, device=None) -> Tensor:
    """(H, W) True inside the centred size×size square (clipped to the image)."""
    top, left = max((height - size) // 2, 0), max((width - size) // 2, 0)
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    mask[top : top + size, left : left + size] = True
    return mask


def occlude(normalized: Tensor, size: int, boundary: bool) -> Tensor:
    """Centre (``boundary=False``) or boundary occlusion of a normalised batch: zero inside (outside) the square."""
    mask = centre_mask(size, *normalized.shape[-2:], device=normalized.device)
    return normalized.masked_fill(~mask if boundary else mask, 0.0)


def in_between_pairs(targets: Tensor, count: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(a, b) indices of ``count`` pairs of test images of different classes, a fixed draw: A uniform over
    the test set, B uniform over the images of the other classes (with replacement, so a test set of n
    images gives any number of pairs, as the paper's 50,000 from ImageNet's 50,000 test images)."""
    targets = targets.cpu()
    g = torch.Generator().manual_seed(seed)
    if len(targets.unique()) < 2:
        raise ValueError("the test set has a single class: no in-between pairs")
    a = torch.randint(len(targets), (count,), generator=g)
    b = torch.randint(len(targets), (count,), generator=g)
    while (same := targets[a] == targets[b]).any():  # draw B again where it has A's class
        b[same] = torch.randint(len(targets), (int(same.sum()),), generator=g)
    return a, b


def cutmix_centre(a: Tensor, b: Tensor, side: int) -> tuple[Tensor, float]:
    """B's centred side×side square pasted into A; λ = A's share of the area."""
    mask = centre_mask(side, *a.shape[-2:], device=a.device)
    return torch.where(mask, b, a), 1.0 - mask.float().mean().item()


def neither(logits: Tensor, ya: Tensor, yb: Tensor) -> Tensor:
    """How many predictions are neither class (a count, on the device)."""
    predicted = logits.argmax(1)
    return ((predicted != ya) & (predicted != yb)).sum()
