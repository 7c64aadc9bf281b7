"""The measured training throughputs (``python -m cutmix_repro.bench`` writes them to
``results/bench/throughput.json``) and how the estimates look them up: ``reproduce NAME --dry-run``'s GPU-hours,
the transfer section's projections. The file is the one of the checkout this package runs from, wherever the
command is typed; ``CUTMIX_THROUGHPUT=PATH`` names another (an installed package, a cluster's copy)."""

from __future__ import annotations

import json
import os
from pathlib import Path

# the repository's results/bench/throughput.json: beside the package, not in the working directory
THROUGHPUT_FILE = Path(__file__).resolve().parent.parent / "results" / "bench" / "throughput.json"


def throughput_file() -> Path:
    return Path(os.environ["CUTMIX_THROUGHPUT"]) if os.environ.get("CUTMIX_THROUGHPUT") else THROUGHPUT_FILE


def data_kind(dataset: str) -> str:
    """The image size a rate was measured at: 32×32 (CIFAR and the small sets), 1×28×28 or 224×224."""
    return ("cifar" if dataset in ("cifar10", "cifar100", "digits", "synthetic") else
            "fashion_mnist" if dataset == "fashion_mnist" else "imagenet")


def measured_throughput(model: str, dataset: str, path: Path | None = None, members: int = 1) -> dict | None:
    """The fastest GPU measurement of ``model`` on images of ``dataset``'s size (any compile mode: the
    estimate assumes the run uses the best one the bench found). With ``members`` > 1 (fused runs): the fastest
    aggregate rate of a fused group of at most that many members, else the solo rate."""
    path = throughput_file() if path is None else path
    if not path.exists():
        return None
    kind = data_kind(dataset)
    found = [entry for entry in json.loads(path.read_text())
             if entry.get("model") == model and entry.get("data") == kind and entry.get("device", "cpu") != "cpu"]
    fused = [e for e in found if 1 < e.get("members", 1) <= members]
    solo = [e for e in found if e.get("members", 1) == 1]
    return max(fused or solo, key=lambda entry: entry["images_per_s"], default=None)
