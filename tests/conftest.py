"""Shared fixtures: one seeded generator per test, and one small finished training run that several
tests read (its records, checkpoints, TensorBoard log), trained once per session.

The suite must pass on any x86 machine, idle or loaded; two switches reproduce the conditions that
change floating-point results: ``CUTMIX_TEST_THREADS=N`` (torch's intra-op threads, here and in the
subprocesses the tests start) and ``CUTMIX_TEST_DETERMINISTIC=1`` (``torch.use_deterministic_algorithms``).
"""

import os
from pathlib import Path

import pytest
import torch
from helpers import fit_run
from scripted import CLASSES, PER_CLASS


def pytest_configure(config):
    import tempfile

    # trainer.channels_last=auto keeps its CPU measurements here (engine/layout.py), not in the user's cache
    os.environ.setdefault("CUTMIX_CACHE_DIR", tempfile.mkdtemp(prefix="cutmix-test-cache-"))
    threads = os.environ.get("CUTMIX_TEST_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
        os.environ["OMP_NUM_THREADS"] = threads
    if os.environ.get("CUTMIX_TEST_DETERMINISTIC") == "1":
        torch.use_deterministic_algorithms(True)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


ROOT = Path(__file__).resolve().parents[1]
# what set-up and tools make in the checkout (not a test's doing)
OWN = {".venv", ".git", ".pytest_cache", ".ruff_cache", "__pycache__", "cutmix_repro.egg-info", ".ci", ".gitignore"}


def _checkout_entries() -> set[str]:
    """The checkout's top-level entries and everything under results/: where a stray run, MLflow store, W&B folder,
    build or report would land."""
    found = {p.name for p in ROOT.iterdir()} - OWN
    return found | {str(p.relative_to(ROOT)) for p in (ROOT / "results").rglob("*")}


@pytest.fixture(autouse=True)
def _leaves_the_checkout_alone():
    """A test that leaves files in the checkout fails: its runs, stores and reports go under its tmp_path."""
    before = _checkout_entries()
    yield
    left = sorted(_checkout_entries() - before)
    if left:
        pytest.fail(f"the test left {left} in the checkout: write them under tmp_path", pytrace=False)


# A run whose test error goes down and up again by construction (tests/scripted.py: a real ResNet-8 that
# trains, answering at test time as PLAN says): best epoch 3, last epoch 4 worse, and the best epoch's
# top-5 error is not the lowest top-5 of the run (epoch 4 has it), on any machine.
FINISHED_RUN = ["dataset=synthetic", "dataset._target_=scripted.coded", f"dataset.num_classes={CLASSES}",
                "dataset.train_size=40", f"dataset.test_size={CLASSES * PER_CLASS}", "dataset.image_size=16",
                "model=cifar_resnet", "model._target_=scripted.ScriptedResNet", "model.depth=8",
                "model.bottleneck=false", "trainer.batch_size=16", "trainer.epochs=4", "trainer.lr=0.1", "seed=1"]


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """(run directory, results) of ``FINISHED_RUN``, trained in-process through ``fit``."""
    run = tmp_path_factory.mktemp("finished") / "run"
    return run, fit_run(FINISHED_RUN, run)
