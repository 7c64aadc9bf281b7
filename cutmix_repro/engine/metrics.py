"""Top-k error counted on the device, reduced across ranks only when read."""

from __future__ import annotations

import torch
from torch import Tensor

from .distributed import all_reduce_sum


def topk_correct(logits: Tensor, targets: Tensor, ks=(1, 5)) -> Tensor:
    """Number of samples whose target is among the top-k logits, for each k (on the device)."""
    maxk = min(max(ks), logits.shape[1])
    top = logits.topk(maxk, dim=1).indices
    hits = top == targets.view(-1, 1)
    return torch.stack([hits[:, : min(k, maxk)].any(1).sum() for k in ks])


class Meter:
    """Sums of loss, top-1/top-5 hits and sample counts, kept on the device (no syncs)."""

    def __init__(self, device):
        self.sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss·n, top1, top5, n

    def update(self, logits: Tensor, targets: Tensor, loss: Tensor | None = None) -> None:
        n = targets.shape[0]
        hits = topk_correct(logits.detach(), targets)
        loss_sum = loss.detach().double() * n if loss is not None else torch.zeros((), device=self.sums.device)
        self.sums += torch.stack([loss_sum, hits[0].double(), hits[1].double(),
                                  torch.tensor(float(n), device=self.sums.device, dtype=torch.float64)])

    def compute(self, distributed: bool = True) -> dict[str, float]:
        sums = self.sums.clone()
        if distributed:
            all_reduce_sum(sums)
        loss, top1, top5, n = sums.tolist()
        n = max(n, 1.0)
        return {"loss": loss / n, "top1_err": 100.0 * (1 - top1 / n), "top5_err": 100.0 * (1 - top5 / n),
                "count": int(sums[3].item())}
