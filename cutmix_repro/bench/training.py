"""Sections 4 and 5: steady-state training throughput of the trainer's step: on CUDA (PyramidNet-200, ResNet-50)
against an official-style fp32 loop, and eager against compiled (``torch.compile``) on the CPU."""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

from .common import forward_flops, median_time


def _official_cutmix(x, y, alpha=1.0):
    """The official code's per-batch CutMix (numpy λ and centre, torch permutation)."""
    lam = np.random.beta(alpha, alpha)
    perm = torch.randperm(x.size(0), device=x.device)
    h, w = x.shape[2:]
    cut = np.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = np.random.randint(h), np.random.randint(w)
    y1, y2 = np.clip(cy - ch // 2, 0, h), np.clip(cy + ch // 2, 0, h)
    x1, x2 = np.clip(cx - cw // 2, 0, w), np.clip(cx + cw // 2, 0, w)
    x[:, :, y1:y2, x1:x2] = x[perm, :, y1:y2, x1:x2]
    lam = 1 - (y2 - y1) * (x2 - x1) / (h * w)
    return x, y, y[perm], lam


def bench_training(model_name: str, num_classes: int, image: int, batch_size: int, steps: int, modes: list[str],
                   device: str = "cuda", model_kwargs: dict | None = None, feature_mixing: bool = False,
                   backend: str = "inductor", official: bool = True, min_run_time: float = 3.0,
                   label: str | None = None, in_chans: int = 3) -> list[dict]:
    """Steady-state training images/s of the trainer's step (``train_one_epoch``: CutMix, or feature CutMix at a
    layer drawn per batch, the mixed loss, device metrics, SGD as the trainer builds it) for each compile mode
    (``eager``, or a ``torch.compile`` mode as ``trainer.compile_mode``), with bf16 autocast and channels_last on
    CUDA; the warm-up (compilation) time and dynamo's graph and graph-break counts; on CUDA also an
    official-style fp32 NCHW eager loop. Timed after a 3-batch warm-up, so the compile epoch is excluded."""
    from ..engine.compiled import compile_model, compiled_graphs
    from ..engine.optim import sgd
    from ..engine.step import StepOptions, train_one_epoch
    from ..models import create_model
    from ..regularizers import CutMix, FeatureCutMix

    device = torch.device(device)
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = cuda
    torch.manual_seed(0)
    batches = [(torch.randn(batch_size, in_chans, image, image, device=device),
                torch.randint(num_classes, (batch_size,), device=device)) for _ in range(steps)]
    extra = {"in_chans": in_chans} if in_chans != 3 else {}
    model = create_model(model_name, num_classes=num_classes, **extra, **(model_kwargs or {})).to(device)
    flops = forward_flops(model, (in_chans, image, image))
    options = StepOptions(device=device, amp_dtype=torch.bfloat16 if cuda else None, channels_last=cuda,
                          log_interval=10 * steps)
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    t_official = None
    if official:  # fp32, NCHW, eager, numpy draws, as the authors' train.py
        official_model = copy.deepcopy(model)
        official_opt = torch.optim.SGD(official_model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                       weight_decay=1e-4)

        def official_loop():
            official_model.train()
            for x, y in batches:
                x, ya, yb, lam = _official_cutmix(x, y)
                out = official_model(x)
                loss = lam * F.cross_entropy(out, ya) + (1 - lam) * F.cross_entropy(out, yb)
                official_opt.zero_grad()
                loss.backward()
                official_opt.step()

        t_official = median_time(official_loop, min_run_time)
        del official_model, official_opt
    rows = []
    for mode in modes:
        torch.manual_seed(0)
        ours = copy.deepcopy(model).to(memory_format=torch.channels_last if cuda else torch.contiguous_format)
        optimizer = sgd(ours, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, classifier_lr=None)
        regularizer = FeatureCutMix(layers=[0, 1, 2, 3, 4]) if feature_mixing else CutMix(alpha=1.0, prob=1.0)
        if mode != "eager":
            compile_model(ours, feature_mixing, mode, backend)

        def step(chosen=batches, m=ours, o=optimizer, r=regularizer):
            train_one_epoch(m, chosen, r, o, scaler, options, 0)

        started = time.perf_counter()  # one call, no warm-up of its own: this is the compilation
        step(batches[:3])
        if cuda:
            torch.cuda.synchronize(device)
        warmup_s = time.perf_counter() - started
        counts = compiled_graphs() if mode != "eager" else {"graphs": 0, "graph_breaks": 0}
        seconds = median_time(step, min_run_time)
        ips = batch_size * steps / seconds
        row = {"model": label or model_name, "image": image, "batch_size": batch_size, "device": str(device),
               "mode": mode, "backend": backend if mode != "eager" else "", "regularizer": type(regularizer).__name__,
               "ours_images_per_s": ips, "step_ms": 1e3 * seconds / steps, "warmup_s": warmup_s, **counts,
               "forward_gflop_per_image": flops / 1e9, "ours_tflops": 3 * flops * ips / 1e12}
        if t_official is not None:
            row["official_images_per_s"] = batch_size * steps / t_official
            row["speedup"] = row["ours_images_per_s"] / row["official_images_per_s"]
        if image == 32:  # a 300-epoch CIFAR run: 50k training images, plus 10k test images per epoch forward-only
            row["projected_300_epoch_hours"] = 300 * (50_000 / ips + 10_000 / (3 * ips)) / 3600
        rows.append(row)
        del ours, optimizer
        if cuda:
            torch.cuda.empty_cache()
    eager = next((r for r in rows if r["mode"] == "eager"), None)
    for row in rows:
        row["over_eager"] = row["ours_images_per_s"] / eager["ours_images_per_s"] if eager else float("nan")
    return rows


CPU_COMPILE_CASES = [  # (label, model, options, feature mixing): every kind of graph the trainer compiles
    ("resnet20", "cifar_resnet", {"depth": 20, "bottleneck": False}, False),
    ("resnet20 feature-cutmix", "cifar_resnet", {"depth": 20, "bottleneck": False}, True),
    ("pyramidnet110 shakedrop", "pyramidnet110", {"shakedrop": True}, False),
]
