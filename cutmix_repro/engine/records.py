"""What a run leaves behind besides checkpoints: ``results.json`` and TensorBoard logs."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

PACKAGES = ("torch", "torchvision", "timm", "hydra-core", "omegaconf", "tensorboard", "cutmix-repro")


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
    info = {"platform": platform.platform(), "processor": platform.machine(), "cpu_count": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def summarize(history: list[dict[str, float]]) -> dict[str, Any]:
    """Best-epoch (the paper's protocol) and last-epoch errors from the per-epoch history."""
    if not history:
        return {}
    best = min(history, key=lambda h: (h["val_top1_err"], h["epoch"]))
    last = history[-1]
    return {
        "best_top1_err": best["val_top1_err"],
        "best_top5_err": best["val_top5_err"],
        "best_epoch": best["epoch"],
        "last_top1_err": last["val_top1_err"],
        "last_top5_err": last["val_top5_err"],
        "images_per_s": sum(h["images_per_s"] for h in history) / len(history),
    }
