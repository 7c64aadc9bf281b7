"""Section 1: the mixing op: our CutMix against timm's Mixup (CutMix mode) and torchvision's v2 CutMix."""

from __future__ import annotations

import functools

import torch

from .common import median_time


def bench_mixing(shapes, min_run_time: float, device="cpu") -> list[dict]:
    from timm.data import Mixup as TimmMixup
    from torchvision.transforms import v2

    from ..regularizers import CutMix

    rows = []
    for shape in shapes:
        x = torch.randn(*shape, device=device)
        y = torch.randint(100, (shape[0],), device=device)
        ours = CutMix(alpha=1.0, prob=1.0)
        timm_mix = TimmMixup(mixup_alpha=0.0, cutmix_alpha=1.0, prob=1.0, mode="batch", label_smoothing=0.0,
                             num_classes=100)
        tv_mix = v2.CutMix(alpha=1.0, num_classes=100)
        t_ours, t_timm, t_tv = (median_time(functools.partial(mixer, x, y), min_run_time)
                                for mixer in (ours, timm_mix, tv_mix))
        rows.append({"shape": "×".join(map(str, shape)), "ours_ms": 1e3 * t_ours, "timm_ms": 1e3 * t_timm,
                     "torchvision_ms": 1e3 * t_tv, "ours_over_timm": t_ours / t_timm,
                     "ours_over_torchvision": t_ours / t_tv})
    return rows
