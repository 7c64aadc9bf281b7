"""SaliencyMix (Uddin et al., "SaliencyMix: A Saliency Guided Data Augmentation Strategy for Better
Regularization", ICLR 2021, arXiv:2006.01791). Not in the CutMix paper: a later mixer, compared under its
protocol by ``reproduce beyond_mixers``.

As the authors' code (afm-shahab-uddin/SaliencyMix, ``saliency_bbox`` in ``SaliencyMix_CIFAR/saliencymix.py`` and
``SaliencyMix-ImageNet/train.py``): λ ~ Beta(α, α); a box of CutMix's sides ⌊H·√(1−λ)⌋ × ⌊W·√(1−λ)⌋ centred on
the most salient pixel of the *partner* image (the first of the permuted batch in batch mode, as theirs; each
image's own partner in ``mode="elem"``), clipped to the image, and the partner's pixels in that box pasted in;
λ from the pasted area. Saliency is OpenCV's static fine-grained saliency (Montabone & Soto, 2010:
``cv2.saliency.StaticSaliencyFineGrained_create``), the one the authors use; its peak is the first maximum in
raster order (numpy's argmax). What OpenCV is handed, ``saliency_input``:

- ``authors`` (the default: what produced the published numbers): exactly ``saliency_bbox``: the *normalised*
  float tensor, transposed to H×W×C, as it is; the map scaled by 255 to uint8 before its first maximum is taken.
  OpenCV reads that float image as near-constant 8-bit intensities, so the peak lands on the object little more
  often than a random pixel does (docs/beyond.md: SaliencyMix; ``python -m cutmix_repro.bench --only saliency``).
- ``pixels``: the image min-max scaled to 8-bit pixels first, the float map's first maximum: what the detector
  was made for.

OpenCV's saliency module ships in ``opencv-contrib-python-headless`` (in the ``dev`` and ``saliency`` extras); any
other ``saliency(image CHW) -> H×W`` can be given.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from .base import BetaSampler, MixedBatch, bernoulli, check_mode, check_prob, unmixed
from .cutmix import box_sides, clip_box

SALIENCY_INPUTS = ("authors", "pixels")


def fine_grained_detector():
    """OpenCV's static fine-grained saliency detector, or one line saying what to install."""
    try:
        import cv2

        return cv2.saliency.StaticSaliencyFineGrained_create()
    except (ImportError, AttributeError):
        raise ConfigError("regularizer", "saliencymix", "needs OpenCV's saliency module: pip install "
                          "opencv-contrib-python-headless (or pip install -e '.[saliency]')") from None


def authors_saliency(image: Tensor) -> np.ndarray:
    """``saliency_bbox``'s map of a CHW image: the tensor as it is (normalised floats), H×W×C, handed to OpenCV;
    the map × 255 as uint8 (``saliency_input=authors``)."""
    detector = fine_grained_detector()
    _, saliency = detector.computeSaliency(image.detach().float().cpu().numpy().transpose(1, 2, 0))
    return (saliency * 255).astype("uint8")


def opencv_fine_grained(image: Tensor) -> np.ndarray:
    """OpenCV's static fine-grained saliency of a CHW image (any range: min-max scaled to 8 bits, HWC;
    ``saliency_input=pixels``)."""
    detector = fine_grained_detector()
    pixels = image.detach().float().cpu()
    pixels = (pixels - pixels.min()) / (pixels.max() - pixels.min()).clamp(min=1e-12) * 255
    ok, saliency = detector.computeSaliency(np.ascontiguousarray(pixels.round().byte().permute(1, 2, 0).numpy()))
    return np.asarray(saliency)


def peak(saliency: np.ndarray) -> tuple[int, int]:
    """(row, column) of the first maximum in raster order."""
    row, col = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
    return int(row), int(col)


class SaliencyMix:
    """CutMix whose box is centred on the partner image's saliency peak."""

    def __init__(self, alpha: float = 1.0, prob: float = 1.0, mode: str = "batch",
                 saliency: Callable[[Tensor], np.ndarray] | None = None, saliency_input: str = "authors"):
        self.beta = BetaSampler(alpha)
        self.alpha = self.beta.alpha
        self.prob = check_prob(prob)
        self.mode = check_mode(mode)
        if saliency_input not in SALIENCY_INPUTS:
            raise ConfigError("saliency_input", saliency_input, "authors (their saliency_bbox: the normalised "
                              "tensor as it is, the published numbers) or pixels (the image as 8-bit pixels)")
        self.saliency_input = saliency_input
        self.saliency = saliency or (authors_saliency if saliency_input == "authors" else opencv_fine_grained)

    def box(self, partner: Tensor, lam: float) -> tuple[int, int, int, int]:
        height, width = partner.shape[-2:]
        cut_h, cut_w = box_sides(lam, height, width)
        cy, cx = peak(self.saliency(partner))
        return clip_box(cy, cx, cut_h, cut_w, height, width)

    def __call__(self, x: Tensor, y: Tensor) -> MixedBatch:
        n, _, height, width = x.shape
        area = height * width
        if self.mode == "batch":
            if not bernoulli(self.prob):
                return unmixed(x, y)
            lam = float(self.beta())
            perm = torch.randperm(n, device=x.device)
            y1, y2, x1, x2 = self.box(x[perm[0]], lam)
            out = x.clone()
            out[:, :, y1:y2, x1:x2] = x[perm, :, y1:y2, x1:x2]
            return MixedBatch(out, y, y[perm], 1.0 - (y2 - y1) * (x2 - x1) / area)
        draws, chosen = self.beta(n), torch.rand(n) < self.prob
        perm = torch.randperm(n, device=x.device)
        out, lam = x.clone(), torch.ones(n, dtype=torch.float64)
        for i in range(n):
            if chosen[i]:
                y1, y2, x1, x2 = self.box(x[perm[i]], float(draws[i]))
                out[i, :, y1:y2, x1:x2] = x[perm[i], :, y1:y2, x1:x2]
                lam[i] = 1.0 - (y2 - y1) * (x2 - x1) / area
        return MixedBatch(out, y, y[perm], lam.to(x.device))

    def __repr__(self) -> str:
        return (f"SaliencyMix(alpha={self.alpha}, prob={self.prob}, mode={self.mode!r}, "
                f"saliency_input={self.saliency_input!r})")
