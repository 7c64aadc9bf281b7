"""Shared fixtures: one seeded generator per test, and one small finished training run that several
tests read (its records, checkpoints, TensorBoard log), trained once per session."""

import pytest
import torch
from helpers import fit_run


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


# A run whose test error goes down and up again: best epoch 3, last epoch 4 worse, and the best epoch's
# top-5 error is not the lowest top-5 of the run (epoch 4 has it). lr 0.5 held constant (gamma 1).
FINISHED_RUN = ["dataset=synthetic", "dataset.train_size=96", "dataset.test_size=48", "model=cifar_resnet",
                "model.depth=8", "model.bottleneck=false", "trainer.batch_size=16", "trainer.epochs=4",
                "trainer.lr=0.5", "scheduler.gamma=1.0", "seed=1"]


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """(run directory, results) of ``FINISHED_RUN``, trained in-process through ``fit``."""
    run = tmp_path_factory.mktemp("finished") / "run"
    return run, fit_run(FINISHED_RUN, run)
