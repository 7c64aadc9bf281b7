"""Resume: the same command + trainer.resume=true continues bit-exactly on the CPU, learning-rate
schedule included; a finished run is neither redone nor overwritten unless told."""

import pytest
import torch
from helpers import FAST, TINY_MODEL, fit_run, history_without_timing, results, scalars, train_main

import cutmix_repro.engine.trainer as trainer_module
from cutmix_repro.engine import records as R

# 4 epochs: the lr decays at epochs 2 and 3 (⌈0.5·4⌉, ⌈0.75·4⌉); the crash comes after epoch 1's checkpoint
OVERRIDES = ["dataset=synthetic", "dataset.train_size=96", "dataset.test_size=40", *TINY_MODEL,
             "model.drop_path_rate=0.1", "regularizer=cutmix", "cutmix_prob=0.5", "trainer.epochs=4",
             "trainer.batch_size=16", "trainer.lr=0.05"]


class Crash(Exception):
    pass


def test_a_resume_that_crosses_lr_milestones_ends_identical_to_an_uninterrupted_run(tmp_path, monkeypatch):
    full = fit_run(OVERRIDES, tmp_path / "full")
    assert [h[R.LR] for h in full["history"]] == pytest.approx([0.05, 0.05, 0.005, 0.0005])

    calls = {"n": 0}
    real_evaluate = trainer_module.evaluate

    def crashing_evaluate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # killed during epoch 2, after epoch 1's checkpoint: both milestones lie ahead
            raise Crash()
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "evaluate", crashing_evaluate)
    with pytest.raises(Crash):
        fit_run(OVERRIDES, tmp_path / "resumed")
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(trainer_module, "evaluate", real_evaluate)
    resumed = fit_run([*OVERRIDES, "trainer.resume=true"], tmp_path / "resumed")

    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys() and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["scheduler"] == b["scheduler"]
    assert history_without_timing(full["history"]) == history_without_timing(resumed["history"])
    # TensorBoard has each epoch exactly once
    assert [s for s, _ in scalars(tmp_path / "resumed", "val/top1_err")] == [1, 2, 3, 4]


ARGS = ["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", *TINY_MODEL, "trainer.epochs=1", *FAST]


def test_resume_without_checkpoint_starts_fresh_and_a_finished_run_exits_zero(tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert train_main([*ARGS, "trainer.resume=true", f"hydra.run.dir={run}"], monkeypatch)[0] == 0
    assert results(run)["status"] == "finished"
    before = (run / "results.json").read_bytes()
    assert "starting fresh" in (run / "train.log").read_text()
    assert train_main([*ARGS, "trainer.resume=true", f"hydra.run.dir={run}"], monkeypatch)[0] == 0
    assert "already finished" in (run / "train.log").read_text()
    assert (run / "results.json").read_bytes() == before


def test_a_finished_run_is_not_overwritten_unless_told(tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert train_main([*ARGS, f"hydra.run.dir={run}"], monkeypatch)[0] == 0
    before = (run / "results.json").read_bytes()
    status, stderr = train_main([*ARGS, f"hydra.run.dir={run}"], monkeypatch)
    assert status == 2 and "trainer.overwrite=true" in stderr and len(stderr.strip().splitlines()) == 1
    assert (run / "results.json").read_bytes() == before
    assert train_main([*ARGS, "trainer.overwrite=true", "seed=1", f"hydra.run.dir={run}"], monkeypatch)[0] == 0
    assert results(run)["seed"] == 1
