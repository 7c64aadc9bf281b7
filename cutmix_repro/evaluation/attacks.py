"""FGSM (Goodfellow et al., 2015), the single-step white-box attack of the paper's Table 11:
x̂ = clip(x + ε·sign(∇ₓ CE(f(x), y)), 0, 1) with the true label y and ε in [0, 1] pixel units (8/255 in the
paper, which does not say whether it clips; it is clipped here, so x̂ stays an image)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def fgsm(model, x: Tensor, y: Tensor, eps: float) -> Tensor:
    """The attacked images for ``model`` taking [0, 1] images (e.g. ``PixelModel``)."""
    if eps < 0:
        raise ValueError(f"eps={eps!r} is invalid: the attack's step must be >= 0")
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), y)
        (grad,) = torch.autograd.grad(loss, x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()
