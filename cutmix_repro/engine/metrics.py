"""Top-k error counted on the device, reduced across ranks only when read.

A target is in the top k when fewer than k other classes score at least as high as it. A tie with
the target therefore counts against it (the official code's ``torch.topk`` breaks ties in an
unspecified order), and a NaN logit never makes a prediction right.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .distributed import all_reduce_sum


def topk_correct(logits: Tensor, targets: Tensor, ks=(1, 5)) -> Tensor:
    """For each k, how many rows have their target among the top k (a tensor on the device)."""
    target_logit = logits.gather(1, targets.view(-1, 1))
    at_least_as_high = ~(logits < target_logit)  # NaN compares False, so NaN counts as higher
    rank = at_least_as_high.sum(1) - 1  # other classes at least as high as the target
    return torch.stack([(rank < k).sum() for k in ks])


class Meter:
    """Sums of loss·n, top-1 and top-5 hits on the device; the sample count on the host.

    ``update`` never synchronises with the device; ``compute`` does (once, when read)."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.sums = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss·n, top1 hits, top5 hits
        self.count = 0

    def update(self, logits: Tensor, targets: Tensor, loss: Tensor) -> None:
        """``loss``: the batch's mean loss, weighted here by the batch's size."""
        n = targets.shape[0]
        hits = topk_correct(logits.detach(), targets).double()
        self.sums[0] += loss.detach().double() * n
        self.sums[1:] += hits
        self.count += n

    def state(self) -> dict:
        return {"sums": self.sums.cpu(), "count": self.count}

    def load_state(self, state: dict) -> None:
        self.sums = state["sums"].to(self.device, torch.float64)
        self.count = int(state["count"])

    def compute(self, distributed: bool = True) -> dict[str, float]:
        """Mean loss, top-1/top-5 error in percent and the count, summed over ranks unless told not to."""
        totals = torch.cat([self.sums, torch.tensor([float(self.count)], dtype=torch.float64).to(self.device)])
        if distributed:
            all_reduce_sum(totals)
        loss, top1, top5, n = totals.tolist()
        count, n = int(n), max(n, 1.0)
        return {"loss": loss / n, "top1_err": 100.0 * (1 - top1 / n), "top5_err": 100.0 * (1 - top5 / n),
                "count": count}
