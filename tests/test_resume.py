"""Resume: same command + trainer.resume=true continues bit-exactly on the CPU."""

import pytest
import torch
from helpers import FAST, TINY_MODEL, results, scalars, train_cli
from hydra import compose, initialize_config_dir

import cutmix_repro.engine.trainer as trainer_module
from cutmix_repro.config_dir import config_dir
from cutmix_repro.engine import fit

OVERRIDES = ["dataset=synthetic", "dataset.train_size=96", "dataset.test_size=40", *TINY_MODEL,
             "model.drop_path_rate=0.1", "regularizer=cutmix", "cutmix_prob=0.5", "trainer.epochs=3",
             "trainer.batch_size=16", "trainer.lr=0.05", *FAST]


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=overrides)


class Crash(Exception):
    pass


def test_resumed_run_ends_with_the_same_weights_and_errors(tmp_path, monkeypatch):
    full = fit(compose_cfg(OVERRIDES), tmp_path / "full")

    calls = {"n": 0}
    real_evaluate = trainer_module.evaluate

    def crashing_evaluate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # killed during epoch 3, after epoch 2's checkpoint
            raise Crash()
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "evaluate", crashing_evaluate)
    with pytest.raises(Crash):
        fit(compose_cfg(OVERRIDES), tmp_path / "resumed")
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["epoch"] == 2
    monkeypatch.setattr(trainer_module, "evaluate", real_evaluate)
    resumed = fit(compose_cfg([*OVERRIDES, "trainer.resume=true"]), tmp_path / "resumed")

    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = [{k: v for k, v in h.items() if k not in ("images_per_s", "wall_time_s")} for h in full["history"]]
    assert strip == [{k: v for k, v in h.items() if k not in ("images_per_s", "wall_time_s")}
                     for h in resumed["history"]]
    # TensorBoard has each epoch exactly once
    assert [s for s, _ in scalars(tmp_path / "resumed", "val/top1_err")] == [1, 2, 3]


def test_resume_without_checkpoint_starts_fresh_and_finished_run_exits_zero(tmp_path):
    run = tmp_path / "run"
    args = ["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", *TINY_MODEL, "trainer.epochs=1",
            *FAST, f"hydra.run.dir={run}"]
    first = train_cli([*args, "trainer.resume=true"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert results(run)["status"] == "finished"
    before = (run / "results.json").read_bytes()
    again = train_cli([*args, "trainer.resume=true"], tmp_path)
    assert again.returncode == 0 and "already finished" in again.stdout + again.stderr
    assert (run / "results.json").read_bytes() == before


def test_finished_run_is_not_overwritten_unless_told(tmp_path):
    run = tmp_path / "run"
    args = ["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", *TINY_MODEL, "trainer.epochs=1",
            *FAST, f"hydra.run.dir={run}"]
    assert train_cli(args, tmp_path).returncode == 0
    before = (run / "results.json").read_bytes()
    refused = train_cli(args, tmp_path)
    assert refused.returncode != 0 and "trainer.overwrite=true" in refused.stderr
    assert (run / "results.json").read_bytes() == before
    replaced = train_cli([*args, "trainer.overwrite=true", "seed=1"], tmp_path)
    assert replaced.returncode == 0 and results(run)["seed"] == 1
