"""Images in [0, 1] pixel units, the model's normalisation inside the function that is evaluated or
attacked: perturbations and occlusions are defined on pixels, as the paper's are.

Every data set of the project stores 8-bit images (CIFAR's arrays, decoded JPEGs, the synthetic sets), so
a pixel is k / 255. The loaders hand out normalised batches; ``to_pixels`` undoes the normalisation and
rounds to the nearest 8-bit level, which gives back the stored pixels exactly (undoing it in float32
alone lands up to ~6e-8 away, enough to flip the sign of a gradient that FGSM takes)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PixelModel(nn.Module):
    """``model(normalize(x))`` for images ``x`` in [0, 1]."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.model((x - self.mean) / self.std)

    def to_pixels(self, normalized: Tensor) -> Tensor:
        """A normalised batch of 8-bit images (what the loaders yield) back to its stored pixels k / 255."""
        return (normalized * self.std + self.mean).mul(255).round().clamp(0, 255).div(255)
