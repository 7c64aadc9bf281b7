"""FMix (Harris et al., "FMix: Enhancing Mixed Sample Data Augmentation", 2020, arXiv:2002.12047). Not in the
CutMix paper: a later mixer, compared under its protocol by ``reproduce beyond_mixers``.

λ ~ Beta(α, α); a grey-scale low-frequency image is drawn as Gaussian noise in Fourier space scaled by
1 / f^δ (f the frequency magnitude, at least 1 / max(H, W); δ = ``decay_power`` = 3), brought back with an
inverse real FFT; its ⌈λ·HW⌉ or ⌊λ·HW⌋ brightest pixels (one or the other with probability ½, as the authors'
``binarise_mask``) form a binary mask: the image keeps its own pixels there and takes its partner's elsewhere.
The label weight is the mask's exact share of pixels (the authors use the drawn λ, within 1/HW of it).

``spectrum`` says which low-frequency image:
- ``authors`` (the default: what produced FMix's published numbers): the authors' ``make_low_freq_image``
  (ecs-vlc/FMix ``fmix.py``). It draws the (H, W//2+1, 2) grid of scaled Gaussian pairs the paper describes,
  then builds the complex spectrum as ``spectrum[:, 0] + 1j * spectrum[:, 1]``, which indexes the *frequency*
  axis: the real parts are the grid's first row (fy = 0), the imaginary parts its second (fy = 1/H), and the
  (W//2+1, 2) result is inverse-transformed to H×W, so the mask holds vertical frequencies 0…W//2 and
  horizontal ones 0 and 1 only.
- ``isotropic``: the spectrum the paper describes (every coefficient of ``rfft2`` a complex Gaussian scaled by
  1 / f^δ). The masks' shapes differ little (docs/beyond.md: FMix; ``python -m cutmix_repro.bench --only fmix``).

``mode="batch"``: one mask for the batch (as the authors' ``FMix`` module); ``mode="elem"``: one λ and mask per
image.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import ConfigError
from .base import BetaSampler, MixedBatch, bernoulli, check_mode, check_prob, unmixed


def frequencies(height: int, width: int) -> Tensor:
    """|f| of every coefficient of ``torch.fft.rfft2`` on an H×W image (as numpy's fftfreq/rfftfreq)."""
    fy = torch.fft.fftfreq(height)[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    return torch.sqrt(fy * fy + fx * fx)


SPECTRA = ("authors", "isotropic")


def low_frequency_image(height: int, width: int, decay_power: float, generator=None) -> Tensor:
    """An H×W real image of Fourier noise whose amplitude falls as 1 / f^decay_power (``spectrum=isotropic``)."""
    freqs = frequencies(height, width)
    scale = 1.0 / torch.clamp(freqs, min=1.0 / max(height, width)) ** decay_power
    noise = torch.randn(2, *freqs.shape, generator=generator)
    spectrum = torch.complex(noise[0] * scale, noise[1] * scale)
    return torch.fft.irfft2(spectrum, s=(height, width))


def authors_frequencies(height: int, width: int) -> Tensor:
    """The authors' ``fftfreqnd(h, w)``: |f| on an H × (W//2+1) grid (W//2+2 columns when W is odd), float64."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(width, dtype=torch.float64)[: width // 2 + (2 if width % 2 else 1)]
    return torch.sqrt(fx * fx + fy * fy)


def authors_noise_shape(height: int, width: int) -> tuple[int, int, int]:
    """The shape of the Gaussian draws of the authors' ``get_spectrum`` (less its channel axis): (H, F, 2)."""
    return (height, authors_frequencies(height, width).shape[1], 2)


def authors_low_frequency_image(height: int, width: int, decay_power: float, noise: Tensor | None = None,
                                generator=None) -> Tensor:
    """The authors' ``make_low_freq_image(decay_power, (H, W))`` before its min-max scaling (which keeps the order
    of the pixels), from ``noise`` of ``authors_noise_shape`` (their ``np.random.randn``; drawn here if None):
    the scaled grid's rows 0 and 1 as real and imaginary parts, inverse-transformed to H×W (module docstring)."""
    freqs = authors_frequencies(height, width)
    scale = 1.0 / torch.clamp(freqs, min=1.0 / max(height, width)) ** decay_power
    if noise is None:
        noise = torch.randn(freqs.shape[0], freqs.shape[1], 2, generator=generator)
    spectrum = scale[..., None] * noise.to(torch.float64)  # (H, F, 2), the authors' layout
    complex_spectrum = torch.complex(spectrum[0], spectrum[1])  # their spectrum[:, 0] + 1j * spectrum[:, 1]: (F, 2)
    return torch.fft.irfftn(complex_spectrum, s=(height, width))[:height, :width]


def binary_mask(image: Tensor, lam: float) -> Tensor:
    """1 on the ⌈λ·N⌉ or ⌊λ·N⌋ (½ each) largest pixels of ``image``, 0 elsewhere (float, image's shape)."""
    size = image.numel()
    count = math.ceil(lam * size) if bool(torch.rand(()) > 0.5) else math.floor(lam * size)
    order = torch.argsort(image.flatten(), descending=True, stable=True)
    mask = torch.zeros(size)
    mask[order[:count]] = 1.0
    return mask.view_as(image)


class FMix:
    """Mix each image with a partner through a low-frequency binary mask holding the λ-share of its pixels."""

    def __init__(self, alpha: float = 1.0, decay_power: float = 3.0, prob: float = 1.0, mode: str = "batch",
                 spectrum: str = "authors"):
        self.beta = BetaSampler(alpha)
        self.alpha = self.beta.alpha
        if not decay_power > 0:
            raise ConfigError("decay_power", decay_power, "the spectrum's decay δ must be > 0 (the paper uses 3)")
        self.decay_power = float(decay_power)
        self.prob = check_prob(prob)
        self.mode = check_mode(mode)
        if spectrum not in SPECTRA:
            raise ConfigError("spectrum", spectrum, "authors (their fmix.py, the published numbers) or isotropic "
                              "(the paper's description)")
        self.spectrum = spectrum

    def low_frequency_image(self, height: int, width: int) -> Tensor:
        if self.spectrum == "authors":
            return authors_low_frequency_image(height, width, self.decay_power)
        return low_frequency_image(height, width, self.decay_power)

    def mask(self, lam: float, height: int, width: int) -> Tensor:
        return binary_mask(self.low_frequency_image(height, width), lam)

    def __call__(self, x: Tensor, y: Tensor) -> MixedBatch:
        n, _, height, width = x.shape
        if self.mode == "batch":
            if not bernoulli(self.prob):
                return unmixed(x, y)
            mask = self.mask(float(self.beta()), height, width).to(x.device)
            lam = float(mask.mean())
            masks = mask.expand(n, 1, height, width)
        else:
            draws = self.beta(n)
            chosen = torch.rand(n) < self.prob
            masks = torch.stack([self.mask(float(l), height, width) if c else torch.ones(height, width)
                                 for l, c in zip(draws, chosen)])[:, None].to(x.device)
            lam = masks.mean((1, 2, 3)).to(torch.float64)
        perm = torch.randperm(n, device=x.device)
        keep = masks.to(x.dtype) if x.is_floating_point() else masks.bool()
        mixed = x * keep + x[perm] * (1 - keep) if x.is_floating_point() else torch.where(keep, x, x[perm])
        return MixedBatch(mixed, y, y[perm], lam)

    def __repr__(self) -> str:
        return (f"FMix(alpha={self.alpha}, decay_power={self.decay_power}, prob={self.prob}, mode={self.mode!r}, "
                f"spectrum={self.spectrum!r})")
