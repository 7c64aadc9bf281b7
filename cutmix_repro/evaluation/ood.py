"""Out-of-distribution detection by the maximum softmax probability (Hendrycks & Gimpel, ICLR 2017), as
the paper's Table 12 / A2: no temperature, no input perturbation; the test set is in-distribution
(positive), each other set out-of-distribution. Metrics in percent, as ODIN's code defines them:

- TNR at 95% TPR: the share of out-of-distribution images below the threshold that keeps 95% of the
  in-distribution ones;
- AUROC (scikit-learn's ``roc_auc_score``);
- detection accuracy: 1 − min over thresholds of ½·P_in(rejected) + ½·P_out(accepted).

Built-in sets as ODIN's code makes them: uniform noise U[0, 1] and Gaussian noise N(0.5, 1) clipped to
[0, 1], at the model's input size, then normalised like the data set.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def detection_metrics(in_scores, out_scores) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score, roc_curve

    scores = np.concatenate([np.asarray(in_scores, dtype=np.float64), np.asarray(out_scores, dtype=np.float64)])
    labels = np.concatenate([np.ones(len(in_scores)), np.zeros(len(out_scores))])
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)  # every threshold
    tnr_at_95 = 1.0 - fpr[np.searchsorted(tpr, 0.95, side="left")]
    detection = 0.5 * (tpr + 1.0 - fpr).max()
    return {"tnr_at_95_tpr": 100.0 * tnr_at_95, "auroc": 100.0 * roc_auc_score(labels, scores),
            "detection_acc": 100.0 * detection}


def noise_images(kind: str, count: int, shape: tuple[int, int, int], seed: int = 0) -> Tensor:
    """``count`` noise images in [0, 1]: ``uniform`` U[0, 1] or ``gaussian`` N(0.5, 1) clipped."""
    g = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        return torch.rand(count, *shape, generator=g)
    if kind == "gaussian":
        return (0.5 + torch.randn(count, *shape, generator=g)).clamp(0, 1)
    raise ValueError(f"noise={kind!r} is invalid: choose uniform or gaussian")


@torch.no_grad()
def max_softmax(model, batches) -> Tensor:
    """The maximum softmax probability of every image of ``batches`` (normalised images), on the CPU."""
    return torch.cat([model(x).float().softmax(1).max(1).values.cpu() for x in batches])
