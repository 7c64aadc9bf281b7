"""What every regularizer returns, and the small checks they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class MixedBatch:
    """A batch after regularization.

    ``lam`` weighs ``targets_a`` (the image's own label) against ``targets_b`` (the partner's):
    a float in batch mode, a tensor of shape (N,) in ``mode="elem"``.

    Feature-level mixing is decided when the batch is drawn but applied inside the network:
    then ``mix_layer`` names the layer index (1 = after the stem, 2..4 = after stage 1..3) and
    ``mix_fn`` is called on that feature map by the model; it fills in ``targets_b`` and
    ``lam`` as it mixes, so read them after the forward pass.
    """

    inputs: Tensor
    targets_a: Tensor
    targets_b: Tensor
    lam: float | Tensor = 1.0
    mix_layer: int | None = None
    mix_fn: Callable[[Tensor], Tensor] | None = None

    @property
    def is_mixed(self) -> bool:
        if isinstance(self.lam, Tensor):
            return bool((self.lam < 1).any())
        return self.lam < 1.0


def unmixed(x: Tensor, y: Tensor) -> MixedBatch:
    """The identity regularizer's output: the batch as it came, λ = 1."""
    return MixedBatch(inputs=x, targets_a=y, targets_b=y, lam=1.0)


class Baseline:
    """No regularization (the paper's "Baseline" rows)."""

    def __call__(self, x: Tensor, y: Tensor) -> MixedBatch:
        return unmixed(x, y)

    def __repr__(self) -> str:
        return "Baseline()"


def check_alpha(alpha: float) -> float:
    if not alpha > 0:
        raise ValueError(f"alpha={alpha!r} is invalid: Beta(alpha, alpha) needs alpha > 0")
    return float(alpha)


def check_prob(prob: float, name: str = "prob") -> float:
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"{name}={prob!r} is invalid: a probability must lie in [0, 1]")
    return float(prob)


def check_mode(mode: str) -> str:
    if mode not in ("batch", "elem"):
        raise ValueError(f"mode={mode!r} is invalid: choose 'batch' or 'elem'")
    return mode


def sample_beta(alpha: float, size: int | None = None, device=None) -> Tensor:
    """λ ~ Beta(α, α) from torch's generator of ``device`` (the CPU by default: no device sync).

    As G₁/(G₁+G₂) with G ~ Gamma(α, 1), the construction ``torch.distributions.Beta`` uses
    internally, without building a distribution object per batch (~60 µs)."""
    shape = (2, 1 if size is None else size)
    gammas = torch._standard_gamma(torch.full(shape, float(alpha), dtype=torch.float64, device=device))
    lam = (gammas[0] / (gammas[0] + gammas[1])).float()
    return lam[0] if size is None else lam


def bernoulli(prob: float) -> bool:
    """One Bernoulli(prob) draw from torch's global generator (seeded and checkpointed)."""
    if prob >= 1.0:
        return True
    if prob <= 0.0:
        return False
    return bool(torch.rand(()) < prob)
