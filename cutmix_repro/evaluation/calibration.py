"""Calibration, beyond the paper (which only says CutMix makes a network less over-confident): expected
calibration error over 15 equal-width confidence bins (Guo et al., ICML 2017), negative log-likelihood,
the Brier score (mean over images of Σ_c (p_c − 1[c = y])²), a reliability diagram, and temperature
scaling: one temperature fitted to minimise the NLL on one half of the test set (the images of even
index) and everything reported again on the other half (odd index)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

BINS = 15


def ece(probs: Tensor, targets: Tensor, bins: int = BINS) -> float:
    confidence, predicted = probs.max(1)
    right = (predicted == targets).float()
    edges = torch.linspace(0, 1, bins + 1)
    total = torch.zeros(())
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.float().mean() * (right[inside].mean() - confidence[inside].mean()).abs()
    return 100.0 * float(total)


def reliability(probs: Tensor, targets: Tensor, bins: int = BINS) -> list[tuple[float, float, int]]:
    """(mean confidence, accuracy, count) per bin, for the diagram."""
    confidence, predicted = probs.max(1)
    right = (predicted == targets).float()
    edges = torch.linspace(0, 1, bins + 1)
    out = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        n = int(inside.sum())
        out.append((float(confidence[inside].mean()) if n else float((low + high) / 2),
                    float(right[inside].mean()) if n else 0.0, n))
    return out


def scores(logits: Tensor, targets: Tensor) -> dict[str, float]:
    probs = logits.softmax(1)
    brier = ((probs - F.one_hot(targets, logits.shape[1]).float()) ** 2).sum(1).mean()
    return {"ece": ece(probs, targets), "nll": float(F.cross_entropy(logits, targets)), "brier": float(brier),
            "top1_err": 100.0 * float((logits.argmax(1) != targets).float().mean())}


def fit_temperature(logits: Tensor, targets: Tensor) -> float:
    """The temperature T > 0 minimising the NLL of ``logits / T`` (LBFGS on log T)."""
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())
