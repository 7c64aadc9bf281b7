"""Running the real command line in a subprocess, and reading what a run left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

TINY_MODEL = ["model=cifar_resnet", "model.depth=8", "model.bottleneck=false"]
FAST = ["trainer.progress=false", "trainer.device=cpu"]


def train_cli(args: list[str], cwd: Path, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "2", "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "cutmix_repro.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def results(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "results.json").read_text())


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) pairs of one TensorBoard scalar tag, from all event files of the run."""
    acc = EventAccumulator(str(Path(run_dir) / "tb"))
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        return []
    return [(e.step, e.value) for e in acc.Scalars(tag)]
