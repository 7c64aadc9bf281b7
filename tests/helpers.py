"""Running the real command line (in a subprocess, or in this process through the same ``main``),
training through ``fit``, and reading what a run left behind."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cutmix_repro.config import compose

DEV_EXTRA = "pip install -e '.[dev]'"


def needs(module: str, package: str | None = None):
    """``module``, imported, for a test that needs a package of the ``dev`` extra (the one rule for them all): where
    it is absent the test skips, naming the package and the extra; under ``CUTMIX_REQUIRE_EXTRAS=1`` (``make test``,
    which has just installed the extra) it fails instead, so that CI never skips a reference check silently."""
    try:
        return importlib.import_module(module)
    except ImportError:
        message = f"needs {package or module} from the dev extra ({DEV_EXTRA})"
        if os.environ.get("CUTMIX_REQUIRE_EXTRAS") == "1":
            pytest.fail(message + "; CUTMIX_REQUIRE_EXTRAS=1 makes its absence a failure", pytrace=False)
        pytest.skip(message, allow_module_level=True)


def needs_opencv_saliency():
    """OpenCV with its contrib saliency module (``opencv-contrib-python-headless``, in the dev extra), by ``needs``'
    rule: without it the test skips, or fails under ``make test``."""
    cv2 = needs("cv2", "opencv-contrib-python-headless")
    if not hasattr(cv2, "saliency"):
        message = f"needs opencv-contrib-python-headless (OpenCV's saliency module) from the dev extra ({DEV_EXTRA})"
        if os.environ.get("CUTMIX_REQUIRE_EXTRAS") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return cv2


TINY_MODEL = ["model=cifar_resnet", "model.depth=8", "model.bottleneck=false"]
FAST = ["trainer.progress=false", "trainer.device=cpu"]
# a transfer detection run small enough for the CPU (tiny images, few RoIs and proposals, the short recipe)
TINY_VOC = ["task.model.min_size=64", "task.model.max_size=96", "task.model.box_batch_size_per_image=16",
            "task.model.rpn_post_nms_top_n_test=30", "+task.model.rpn_post_nms_top_n_train=100", "recipe=short",
            "task.recipes.short.batch_size=2", "task.recipes.short.lr=0.0001", "workers=0", "device=cpu",
            "log_every=1"]


def train_cli(args: list[str], cwd: Path, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    threads = os.environ.get("CUTMIX_TEST_THREADS", "2")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": threads, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "cutmix_repro.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def in_process(main, name: str, args: list[str], monkeypatch) -> tuple[int, str]:
    """``python -m NAME ARGS`` run in this process through its ``main``: (exit status, stderr)."""
    monkeypatch.setattr(sys, "argv", [name, *args])
    err, status = io.StringIO(), 0
    with contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    return status, err.getvalue()


def train_main(args: list[str], monkeypatch) -> tuple[int, str]:
    """``python -m cutmix_repro.train ARGS`` run in this process (the same ``main``): (exit status, stderr)."""
    from cutmix_repro import train

    return in_process(train.main, "cutmix_repro.train", args, monkeypatch)


def transfer_main(args: list[str], monkeypatch) -> tuple[int, str]:
    """``python -m cutmix_repro.transfer ARGS`` in this process: (exit status, stderr)."""
    from cutmix_repro.transfer.__main__ import main

    return in_process(main, "cutmix_repro.transfer", args, monkeypatch)


def fit_run(overrides: list[str], run_dir: Path) -> dict:
    """Train the composed config in this process; the results it returns."""
    from cutmix_repro.engine.trainer import fit

    return fit(compose([*overrides, *FAST]), run_dir)


def results(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "results.json").read_text())


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) pairs of one TensorBoard scalar tag, from all event files of the run."""
    acc = EventAccumulator(str(Path(run_dir) / "tb"))
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        return []
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def history_without_timing(history: list[dict]) -> list[dict]:
    from cutmix_repro.engine import records as R

    timing = (R.IMAGES_PER_S, R.WALL_TIME, R.TB_IMAGES_S, R.COLD_START)  # how fast, not what it learned
    return [{k: v for k, v in h.items() if k not in timing} for h in history]


def unique_batch(n: int, c: int = 3, h: int = 32, w: int = 32, dtype=None):
    """Every value in the batch is distinct, so each output pixel names the image it came from."""
    import torch

    return torch.arange(n * c * h * w, dtype=torch.float64).view(n, c, h, w).to(dtype or torch.float32)


def source_of(out, orig, channel: int = 0):
    """For each output pixel (n, h, w) of one channel, the index of the input image it came from."""
    n, c, h, w = orig.shape
    return (out[:, channel].double() // (c * h * w)).long()  # value v belongs to image v // (c·h·w)
