"""Images in [0, 1] pixel units, the model's normalisation inside the function that is evaluated or
attacked: perturbations and occlusions are defined on pixels, as the paper's are."""

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
        """A normalised batch (what the loaders yield) back to [0, 1]."""
        return (normalized * self.std + self.mean).clamp(0, 1)
