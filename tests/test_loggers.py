"""logger=[tensorboard,csv,wandb,mlflow] (issue: beyond the paper): every logger gets each epoch exactly once, a
resumed run included; wandb and mlflow in their offline modes; a missing package is one line. And the issue's
closing check: EMA + cosine + TrivialAugment + logger=[tensorboard,csv] trains, resumes exactly, shows each switch."""

import csv
import json
import struct
import sys
from pathlib import Path

import pytest
import torch
from helpers import FAST, TINY_MODEL, fit_run, history_without_timing, needs, results, scalars, train_main

import cutmix_repro.engine.trainer as trainer_module
from cutmix_repro.engine import records as R
from cutmix_repro.errors import ConfigError

RUN = ["dataset=synthetic", "dataset.train_size=32", "dataset.test_size=16", "dataset.image_size=16", *TINY_MODEL,
       "trainer.epochs=3", "trainer.batch_size=16", "trainer.lr=0.1"]
TIMING = {R.IMAGES_PER_S, R.WALL_TIME, R.TB_IMAGES_S, R.COLD_START}


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def wandb_offline_records(run_dir: Path) -> list[tuple[str, object]]:
    """(kind, record) of every offline W&B run of ``run_dir``, in order: the ``.wandb`` files are LevelDB-style
    logs (32 KiB blocks of records with a 7-byte header; full/first/middle/last pieces) of protobuf ``Record``s."""
    from wandb.proto import wandb_internal_pb2 as pb

    out = []
    for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        data, pos, pending = path.read_bytes(), 7, b""  # after the file's own header (":W&B", magic, version)
        while pos + 7 <= len(data):
            if 32768 - pos % 32768 < 7:
                pos += 32768 - pos % 32768
                continue
            _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
            chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
            if kind == 0:
                break
            pending = chunk if kind in (1, 2) else pending + chunk
            if kind in (1, 4):
                record = pb.Record()
                record.ParseFromString(pending)
                out.append((record.WhichOneof("record_type"), record))
    return out


def wandb_history(run_dir: Path) -> list[dict]:
    return [{item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
            for kind, r in wandb_offline_records(run_dir) if kind == "history"]


def test_csv_writes_one_line_per_epoch_with_every_history_field_and_tensorboard_can_be_left_out(tmp_path):
    result = fit_run([*RUN, "logger=[csv]"], tmp_path / "run")
    rows = read_csv(tmp_path / "run" / "summary.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for row, entry in zip(rows, result["history"]):
        assert row.keys() == entry.keys()
        assert float(row[R.VAL_TOP1]) == entry[R.VAL_TOP1] and float(row[R.TRAIN_LOSS]) == entry[R.TRAIN_LOSS]
    assert not (tmp_path / "run" / "tb").exists(), "logger=[csv]: no TensorBoard log"
    # a run replaced (trainer.overwrite) logs its own epochs from the first: nothing of the old one is kept
    fit_run([*RUN, "logger=[csv]", "trainer.epochs=1", "trainer.overwrite=true", "seed=1"], tmp_path / "run")
    assert [int(r["epoch"]) for r in read_csv(tmp_path / "run" / "summary.csv")] == [1]


def test_wandb_offline_logs_each_epoch_once_with_the_hyperparameters_and_one_id_across_a_resume(tmp_path,
                                                                                              monkeypatch):
    needs("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    crash_in_epoch(2, monkeypatch)
    with pytest.raises(Crash):
        fit_run([*RUN, "logger=[wandb]"], run)
    monkeypatch.undo()
    result = fit_run([*RUN, "logger=[wandb]", "trainer.resume=true"], run)
    steps = wandb_history(run)
    assert [s["_step"] for s in steps] == [1, 2, 3], "each epoch once, the resumed run going on from epoch 2"
    assert [s["val/top1_err"] for s in steps] == [h[R.VAL_TOP1] for h in result["history"]]
    runs = [r.run for kind, r in wandb_offline_records(run) if kind == "run"]
    assert len({r.run_id for r in runs}) == 1 and runs[0].display_name.endswith("resnet8 · synthetic · run")
    config = {item.key or "/".join(item.nested_key): item.value_json for item in runs[0].config.update}
    assert json.loads(config["trainer.lr"]) == 0.1 and "regularizer" in config


def test_mlflow_file_store_gets_params_each_epoch_once_and_the_status_across_a_resume(tmp_path, monkeypatch):
    mlflow = needs("mlflow", "mlflow-skinny")
    store, run = tmp_path / "mlruns", tmp_path / "run"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file:{store}")  # where MLflow users set it; the config may too
    args = [*RUN, "logger=[mlflow]"]
    crash_in_epoch(2, monkeypatch)
    with pytest.raises(Crash):
        fit_run(args, run)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="holds no MLflow run .* resume with the tracking URI it started with"):
        fit_run([*args, "trainer.resume=true", f"logger.mlflow.tracking_uri={tmp_path / 'elsewhere'}"], run)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file:{store}")
    result = fit_run([*args, "trainer.resume=true"], run)
    client = mlflow.tracking.MlflowClient(f"file:{store}")
    (found,) = client.search_runs([client.get_experiment_by_name("cutmix-repro").experiment_id])
    history = client.get_metric_history(found.info.run_id, "val_top1_err")
    assert [(m.step, m.value) for m in history] == [(h[R.EPOCH], h[R.VAL_TOP1]) for h in result["history"]]
    assert found.data.params["trainer.lr"] == "0.1" and found.info.status == "FINISHED"
    assert float(found.data.tags[R.BEST_TOP1]) == result[R.BEST_TOP1]


@pytest.mark.parametrize("package", ["wandb", "mlflow"])
def test_a_missing_package_or_an_unknown_logger_is_one_line_and_writes_nothing(package, tmp_path, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    with pytest.raises(ConfigError, match=rf"needs the package '{package}'.*cutmix-repro\[{package}\]"):
        fit_run([*RUN, f"logger=[tensorboard,{package}]"], run)
    assert not run.exists()
    status, err = train_main([*RUN, *FAST, f"logger=[csv,{package}]", f"hydra.run.dir={run}"], monkeypatch)
    assert status == 2 and len(err.strip().splitlines()) == 1 and f"'{package}'" in err, err
    assert not run.exists()
    status, err = train_main([*RUN, *FAST, "logger=[tensorboard,neptune]", f"hydra.run.dir={run}"], monkeypatch)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "logger='neptune'" in err and "csv" in err
    assert not run.exists()


class Crash(Exception):
    pass


def crash_in_epoch(epoch: int, monkeypatch, evaluations_per_epoch: int = 1):
    """Kill the run at the first evaluation of ``epoch`` (after the previous epoch's checkpoint)."""
    calls, real = {"n": 0}, trainer_module.evaluate

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == (epoch - 1) * evaluations_per_epoch + 1:
            raise Crash()
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "evaluate", crashing)


def test_ema_cosine_trivialaugment_and_csv_train_resume_exactly_and_show_each_switch(tmp_path, monkeypatch):
    args = [*RUN, "trainer.epochs=4", "trainer.ema_decay=0.8", "scheduler=cosine", "scheduler.warmup_epochs=1",
            "augment=trivialaugment", "augment.random_erasing=0.25", "logger=[tensorboard,csv]",
            "regularizer=cutmix"]
    full = fit_run(args, tmp_path / "full")
    crash_in_epoch(3, monkeypatch, evaluations_per_epoch=2)  # the model's and the EMA's evaluation
    with pytest.raises(Crash):
        fit_run(args, tmp_path / "resumed")
    monkeypatch.undo()
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["epoch"] == 2
    resumed = fit_run([*args, "trainer.resume=true"], tmp_path / "resumed")

    a, b = (torch.load(tmp_path / r / "last.pt", weights_only=True) for r in ("full", "resumed"))
    for key in ("model", "optimizer"):
        assert str(a[key]) == str(b[key]) if key == "optimizer" else all(torch.equal(a[key][k], b[key][k])
                                                                            for k in a[key])
    assert a["ema"]["updates"] == b["ema"]["updates"] == 4 * 2
    assert all(torch.equal(a["ema"]["weights"][k], b["ema"]["weights"][k]) for k in a["ema"]["weights"])
    assert a["scheduler"] == b["scheduler"]
    assert history_without_timing(full["history"]) == history_without_timing(resumed["history"])
    strip = [[{k: v for k, v in row.items() if k not in TIMING} for row in read_csv(tmp_path / r / "summary.csv")]
             for r in ("full", "resumed")]
    assert strip[0] == strip[1] and len(strip[0]) == 4 and R.VAL_TOP1_EMA in strip[0][0]
    assert [s for s, _ in scalars(tmp_path / "resumed", "val_ema/top1_err")] == [1, 2, 3, 4]
    # each switch, in results.json, the run's TensorBoard session name and its hyperparameters
    switches = results(tmp_path / "resumed")["switches"]
    assert switches == {"ema_decay": "0.8", "augment": "trivialaugment(random_erasing=0.25)",
                        "scheduler": "cosine_warmup(warmup_epochs=1, warmup_start=0.01, min_lr=0.0)"}
    from test_train_cli import session_hparams, session_start

    name = session_start(tmp_path / "resumed").group_name
    for switch in ("ema_decay=0.8", "augment=trivialaugment", "scheduler=cosine_warmup"):
        assert f"{switch} (not the paper's)" in name, name
    shown = session_hparams(tmp_path / "resumed")
    assert shown["trainer.ema_decay"] == 0.8 and shown["augment.policy"] == "trivialaugment"
    assert shown["scheduler"] == "cosine_warmup" and shown["augment"] == "trivialaugment"


class ListLogger:
    """A logger of one's own (``_target_`` in its YAML): the same four methods as ``engine.loggers.EpochLogger``."""

    seen: list = []

    def start(self, run_dir, record, hparams, name):
        ListLogger.seen = [("start", name)]

    def log(self, history):
        ListLogger.seen.append(("log", [h[R.EPOCH] for h in history]))

    def finish(self, record):
        ListLogger.seen.append(("finish", record[R.STATUS]))


def test_a_logger_of_your_own_is_built_from_its_target_and_one_without_a_target_is_one_line(tmp_path):
    fit_run([*RUN, "trainer.epochs=2", "+logger.mine._target_=test_loggers.ListLogger"], tmp_path / "run")
    assert ListLogger.seen == [("start", "CutMix · resnet8 · synthetic · run"), ("log", [1]), ("log", [1, 2]),
                               ("finish", "finished")]
    with pytest.raises(ConfigError, match="logger.mine: has no _target_"):
        fit_run([*RUN, "+logger.mine.level=1"], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
