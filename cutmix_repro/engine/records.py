"""What a run leaves besides checkpoints: ``results.json`` and TensorBoard, and the names of their
fields. Every name is defined here once and used by the trainer, the CLI and the report."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

# One epoch of the history (results.json "history" and checkpoints), errors in percent.
EPOCH, LR = "epoch", "lr"
TRAIN_LOSS, TRAIN_TOP1 = "train_loss", "train_top1_err"  # train error: against each image's own label
VAL_LOSS, VAL_TOP1, VAL_TOP5, VAL_COUNT = "val_loss", "val_top1_err", "val_top5_err", "val_count"
IMAGES_PER_S, WALL_TIME = "images_per_s", "wall_time_s"
# The first epoch a process trains pays for compilation, cuDNN's autotuning and the loaders' start:
# STEADY_IMAGES_PER_S is the mean over the other epochs (null until there is one).
COLD_START, STEADY_IMAGES_PER_S = "cold_start", "steady_images_per_s"
# With trainer.compile=true: graphs dynamo compiled and graph breaks so far in this process (constant after
# the first epoch when nothing recompiles; engine/compiled.py).
COMPILED_GRAPHS, GRAPH_BREAKS = "compiled_graphs", "graph_breaks"
TB_IMAGES_S = "tb_images_s"  # seconds the epoch's TensorBoard images took (mixed batch, CAMs)
RANK_VAL_TOP1 = "rank_val_top1_err"  # under DDP: every rank's view of the same evaluation
# On data with object boxes (localization accuracies in percent, higher is better; cutmix_repro.localization).
VAL_TOP1_LOC, VAL_GT_KNOWN_LOC, VAL_MAX_BOX_ACC = "val_top1_loc", "val_gt_known_loc", "val_max_box_acc"
VAL_MAX_BOX_ACC_V2 = "val_max_box_acc_v2"
# With trainer.ema_decay (not the paper's recipe): the weights' moving average, evaluated beside the raw model.
VAL_LOSS_EMA, VAL_TOP1_EMA, VAL_TOP5_EMA = "val_loss_ema", "val_top1_err_ema", "val_top5_err_ema"
LOCALIZATION = {"top1_loc": VAL_TOP1_LOC, "gt_known_loc": VAL_GT_KNOWN_LOC, "max_box_acc": VAL_MAX_BOX_ACC,
                "max_box_acc_threshold": "val_max_box_acc_threshold", "max_box_acc_v2": VAL_MAX_BOX_ACC_V2}
# The TensorBoard scalar of each history field drawn per epoch.
TB_TAGS = {TRAIN_LOSS: "train/loss", TRAIN_TOP1: "train/top1_err", VAL_LOSS: "val/loss", VAL_TOP1: "val/top1_err",
           VAL_TOP5: "val/top5_err", LR: "lr", IMAGES_PER_S: "train/images_per_s", VAL_TOP1_LOC: "val/top1_loc",
           VAL_GT_KNOWN_LOC: "val/gt_known_loc", VAL_MAX_BOX_ACC: "val/max_box_acc",
           VAL_MAX_BOX_ACC_V2: "val/max_box_acc_v2", COMPILED_GRAPHS: "compile/graphs",
           GRAPH_BREAKS: "compile/graph_breaks", VAL_LOSS_EMA: "val_ema/loss", VAL_TOP1_EMA: "val_ema/top1_err",
           VAL_TOP5_EMA: "val_ema/top5_err"}

# The summary of a run. Best: the epoch with the lowest test top-1 error, the latest one on a tie (the
# official train.py's ``err1 <= best_err1``), and that epoch's top-5 error (its ``best_err5``), as the
# paper reports. Last: the final epoch.
BEST_TOP1, BEST_TOP5, BEST_EPOCH = "best_top1_err", "best_top5_err", "best_epoch"
LAST_TOP1, LAST_TOP5 = "last_top1_err", "last_top5_err"
# Localization: the last epoch's, and the best epoch's (the same best epoch, lowest top-1 error).
LAST_TOP1_LOC, BEST_TOP1_LOC = "last_top1_loc", "best_top1_loc"
LAST_GT_KNOWN_LOC, LAST_MAX_BOX_ACC = "last_gt_known_loc", "last_max_box_acc"
LAST_MAX_BOX_ACC_V2 = "last_max_box_acc_v2"
# The EMA's own: its lowest test top-1 error (the latest of equals), that epoch, its last.
BEST_TOP1_EMA, BEST_EPOCH_EMA, LAST_TOP1_EMA = "best_top1_err_ema", "best_epoch_ema", "last_top1_err_ema"
STATUS, EPOCHS_DONE = "status", "epochs_done"
# Drawn from the run's summary after each epoch: the best epoch's errors so far (``best/`` sorts first among the
# HParams plugin's metric columns, which it orders by name) and the steady-state throughput so far.
TB_SUMMARY_TAGS = {BEST_TOP1: "best/val_top1_err", BEST_TOP5: "best/val_top5_err",
                   STEADY_IMAGES_PER_S: "train/steady_images_per_s", BEST_TOP1_EMA: "best/val_top1_err_ema"}
RUNNING, FINISHED, INTERRUPTED, DIVERGED = "running", "finished", "interrupted", "diverged"

PACKAGES = ("torch", "torchvision", "timm", "hydra-core", "omegaconf", "tensorboard", "cutmix-repro")


def best_epoch(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The history entry with the lowest test top-1 error; the latest of equals wins."""
    return min(reversed(history), key=lambda h: h[VAL_TOP1])


def summarize(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Best-epoch (the paper's protocol) and last-epoch errors from the per-epoch history."""
    if not history:
        return {}
    best, last = best_epoch(history), history[-1]
    summary = {
        BEST_TOP1: best[VAL_TOP1],
        BEST_TOP5: best[VAL_TOP5],
        BEST_EPOCH: best[EPOCH],
        LAST_TOP1: last[VAL_TOP1],
        LAST_TOP5: last[VAL_TOP5],
        IMAGES_PER_S: sum(h[IMAGES_PER_S] for h in history) / len(history),
        STEADY_IMAGES_PER_S: steady_images_per_s(history),
    }
    if VAL_TOP1_LOC in last:
        summary.update({LAST_TOP1_LOC: last[VAL_TOP1_LOC], BEST_TOP1_LOC: best[VAL_TOP1_LOC],
                        LAST_GT_KNOWN_LOC: last[VAL_GT_KNOWN_LOC], LAST_MAX_BOX_ACC: last[VAL_MAX_BOX_ACC],
                        LAST_MAX_BOX_ACC_V2: last.get(VAL_MAX_BOX_ACC_V2)})
    if VAL_TOP1_EMA in last:
        best_ema = min(reversed(history), key=lambda h: h[VAL_TOP1_EMA])
        summary.update({BEST_TOP1_EMA: best_ema[VAL_TOP1_EMA], BEST_EPOCH_EMA: best_ema[EPOCH],
                        LAST_TOP1_EMA: last[VAL_TOP1_EMA]})
    return summary


def steady_images_per_s(history: list[dict[str, Any]]) -> float | None:
    """Mean images/s of the epochs that were not a process's first (``COLD_START``)."""
    warm = [h[IMAGES_PER_S] for h in history if not h.get(COLD_START, False)]
    return sum(warm) / len(warm) if warm else None


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_revision() -> str:
    """The commit of the source tree this package runs from (with '+dirty' if modified)."""
    src = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except Exception:
        return "unknown"


def machine() -> dict[str, Any]:
    import os

    import torch

    info = {"platform": platform.platform(), "processor": platform.machine(), "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def describe_run(cfg, parts, world_size: int, choices: dict[str, str], nondeterminism: dict[str, Any]) -> dict:
    """The header of ``results.json``: what was trained, how, where, with which code (``parts``: the trainer's)."""
    from ..config import params, recipe_switches
    from ..models import count_parameters

    tcfg, device = cfg.trainer, parts.options.device
    return {
        STATUS: RUNNING,
        "dataset": parts.data.name,
        "dataset_options": {k: v for k, v in params(cfg.dataset).items() if k not in ("root", "system_dir")},
        "model": parts.model.arch_name,
        "model_target": cfg.model._target_,
        "model_options": params(cfg.model),
        "regularizer": choices.get("regularizer", type(parts.regularizer).__name__),
        "regularizer_target": cfg.regularizer._target_,
        "regularizer_params": params(cfg.regularizer),
        "label_smoothing": cfg.label_smoothing,
        "switches": recipe_switches(cfg),  # what is not the paper's recipe (empty for the paper's)
        "experiment": choices.get("experiment"),
        "seed": cfg.seed,
        "epochs": tcfg.epochs,
        "batch_size": tcfg.batch_size,
        "lr": tcfg.lr,
        "num_params": count_parameters(parts.model),
        "world_size": world_size,
        "device": str(device),
        "amp": str(parts.options.amp_dtype),
        "channels_last": parts.options.channels_last,
        "layout_probe": parts.layout_probe,
        "compile": bool(tcfg.compile),
        "compiled": parts.compiled,
        "compile_mode": tcfg.compile_mode if tcfg.compile else None,
        "captured": parts.captured is not None,
        "nondeterminism": nondeterminism,
        "versions": package_versions(),
        "git_revision": git_revision(),
        "machine": machine(),
    }
