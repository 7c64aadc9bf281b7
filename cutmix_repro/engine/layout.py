"""``trainer.channels_last=auto`` on the CPU: the memory layout that is faster for this model and these images on
this machine, measured before training.

On CUDA channels_last is the fast layout for convolutions under bf16 (tensor cores), and ``auto`` turns it on. On
the CPU it depends on the model, the image size and channels and the machine's oneDNN kernels (this project's 2-core
machine: channels_last trains a 3-channel 32×32 CIFAR ResNet-20 faster, a 1-channel 28×28 one slower; ``python -m
cutmix_repro.bench --only cpu`` prints the ratios), so ``auto`` times both: a copy of the model does forward and
backward on a batch of random images of the data's shape in each layout (one warm-up step, then the fastest of
``steps``), under a forked random state. The model, its gradients and the run's random streams are untouched; the
choice and both timings go to ``results.json`` (``layout_probe``).

A choice is measured once per machine and setting and kept (``$CUTMIX_CACHE_DIR``, else ``~/.cache/cutmix_repro``,
``cpu_layout.json``, keyed by the CPU, torch, threads, the model and the batch's shape): timing noise never makes two
runs of one setting train in different layouts (whose float results differ in the last bits), and a resumed run
keeps the layout its checkpoint was trained in.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import platform
import time
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger("cutmix_repro")


def _step_seconds(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, steps: int) -> float:
    best = float("inf")
    for i in range(steps + 1):
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(images), targets).backward()
        if i:  # the first step warms up (oneDNN primitive creation)
            best = min(best, time.perf_counter() - start)
    return best


def faster_layout(model: nn.Module, shape: tuple[int, ...], batch: int, num_classes: int,
                  steps: int = 2) -> tuple[bool, dict[str, float]]:
    """(whether channels_last is faster, the seconds of one training step in each layout) for ``model`` on CPU
    batches of ``batch`` images of ``shape`` (C, H, W)."""
    with torch.random.fork_rng(devices=[]):
        images = torch.randn(batch, *shape)
        targets = torch.randint(0, num_classes, (batch,))
        probe = copy.deepcopy(model).train()
        contiguous = _step_seconds(probe, images, targets, steps)
        probe = probe.to(memory_format=torch.channels_last)
        channels_last = _step_seconds(probe, images.contiguous(memory_format=torch.channels_last), targets, steps)
    times = {"contiguous_s": round(contiguous, 5), "channels_last_s": round(channels_last, 5)}
    return channels_last < contiguous, times


def cache_file() -> Path:
    return Path(os.environ.get("CUTMIX_CACHE_DIR") or Path.home() / ".cache" / "cutmix_repro") / "cpu_layout.json"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def setting_key(model: nn.Module, shape: tuple[int, ...], batch: int) -> str:
    params = sum(p.numel() for p in model.parameters())
    name = getattr(model, "arch_name", type(model).__name__)
    return (f"{_cpu_name()} | torch {torch.__version__} | {torch.get_num_threads()} threads | "
            f"{name} ({params} parameters) | {batch}x{'x'.join(map(str, shape))}")


def cpu_layout(model: nn.Module, shape: tuple[int, ...], batch: int, num_classes: int) -> dict:
    """The kept choice for this setting, else measured (``faster_layout``) and kept: ``{"chosen": "channels_last" or
    "contiguous", "contiguous_s", "channels_last_s", "key", "measured": whether this call measured it}``."""
    key, path = setting_key(model, shape, batch), cache_file()
    try:
        kept = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        kept = {}
    if key in kept:
        return {**kept[key], "key": key, "measured": False}
    faster, times = faster_layout(model, shape, batch, num_classes)
    entry = {"chosen": "channels_last" if faster else "contiguous", **times}
    try:  # written whole then renamed: runs side by side never read half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**kept, key: entry}, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home: measured again next time
    return {**entry, "key": key, "measured": True}


def auto_layout(setting, device: torch.device, world_size: int, model: nn.Module, data, batch_size: int) -> dict | None:
    """``trainer.channels_last=auto`` in one CPU process: the layout ``cpu_layout`` chooses for ``model`` on ``data``'s
    images, logged; None otherwise (CUDA: on; under DDP: off, every rank alike)."""
    if setting != "auto" or device.type != "cpu" or world_size != 1:
        return None
    shape = tuple(data.train.sample(0)[0].shape)
    probe = cpu_layout(model, shape, min(batch_size, 64 if shape[-1] <= 64 else 8), data.num_classes)
    log.info("trainer.channels_last=auto on the CPU: %s (one step %.1f ms contiguous, %.1f ms channels_last%s)",
             probe["chosen"], 1e3 * probe["contiguous_s"], 1e3 * probe["channels_last_s"],
             "" if probe["measured"] else f", measured before: {cache_file()}")
    return probe
