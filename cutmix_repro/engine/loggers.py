"""``logger=[tensorboard,csv,wandb,mlflow]``: where a run's numbers go besides ``results.json`` (always written).

``tensorboard`` (the default) is the ``RunRecorder``'s own (scalars, images, HParams). The others are built from
``configs/logger/NAME.yaml`` (Hydra's ``instantiate``) and get, on rank 0 only:
- ``start(run_dir, record, hparams, name)``: the run's header, its hyperparameters and its name;
- ``log(history)`` after each epoch, once ``last.pt`` and ``results.json`` are written: every epoch they have not
  logged yet (what they logged is kept in ``loggers.json`` in the run directory, so a resumed run neither
  repeats an epoch nor skips one);
- ``finish(record)``: the run's summary (best and last errors) and its status.

- ``csv``: ``summary.csv``, one line per epoch, as timm's train.py writes it (here: every history field; the file
  is rewritten from the history each epoch, so a resumed run's file is the uninterrupted run's).
- ``wandb``: Weights & Biases, offline by default (``wandb sync RUN_DIR/wandb/offline-run-*`` uploads it later);
  the run keeps one id across resumes. Optional: ``pip install 'cutmix-repro[wandb]'``.
- ``mlflow``: MLflow tracking into a local file store (``mlruns`` beside where you run, what ``mlflow ui``
  reads; ``$MLFLOW_TRACKING_URI`` instead when set), one MLflow run per training run, continued on resume.
  Optional: ``pip install 'cutmix-repro[mlflow]'``.
  MLflow 3 keeps its file store in maintenance mode and asks for an opt-in (``MLFLOW_ALLOW_FILE_STORE``), which
  this logger gives for ``file:`` stores; any other ``tracking_uri`` (a server, a database) is passed as given.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import records as R
from .checkpoint import atomic_write, write_json

STATE_FILE = "loggers.json"


def build_loggers(nodes, build) -> list:
    """The loggers of ``logger=[...]`` but TensorBoard (the recorder's own), each built from its node's ``_target_``
    (ours, or your own class through ``hydra.searchpath``, with the same four methods as ``EpochLogger``)."""
    loggers = []
    for name, node in (nodes or {}).items():
        if name == "tensorboard":
            continue
        if "_target_" not in node:
            raise ConfigError(f"logger.{name}", problem="has no _target_: a logger's YAML names the class to build")
        loggers.append(build(node, f"logger.{name}"))
    return loggers


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError("logger", extra, f"needs the package {module!r}: pip install 'cutmix-repro[{extra}]', "
                          f"or leave {extra} out of logger=[...]") from None


class EpochLogger:
    """What the file-based loggers share: the run directory, and which epochs are already logged."""

    key = "base"

    def start(self, run_dir: Path, record: dict[str, Any], hparams: dict[str, Any], name: str) -> None:
        self.run_dir = Path(run_dir)
        self.state = self._read_state().get(self.key, {})
        self.logged = int(self.state.get("logged_epochs", 0))

    def log(self, history: list[dict[str, Any]]) -> None:
        new = [entry for entry in history if entry[R.EPOCH] > self.logged]
        if new:
            self.write(history, new)
            self.logged = new[-1][R.EPOCH]
            self.state["logged_epochs"] = self.logged
            self._save_state()

    def write(self, history: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def finish(self, record: dict[str, Any]) -> None:
        pass

    def _read_state(self) -> dict[str, Any]:
        path = self.run_dir / STATE_FILE
        try:
            return json.loads(path.read_text()) if path.exists() else {}
        except (OSError, json.JSONDecodeError):
            return {}

    def _save_state(self) -> None:
        states = self._read_state()
        states[self.key] = self.state
        write_json(self.run_dir / STATE_FILE, states)


def _scalar(value):
    return value if isinstance(value, int | float | str | bool) or value is None else json.dumps(value)


class CSVLogger(EpochLogger):
    """``summary.csv``: a header line, then one line per epoch (timm's ``update_summary``)."""

    key = "csv"

    def __init__(self, filename: str = "summary.csv"):
        self.filename = filename

    def write(self, history, new) -> None:
        columns: list[str] = []
        for entry in history:
            columns += [k for k in entry if k not in columns]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for entry in history:
            writer.writerow({k: _scalar(v) for k, v in entry.items()})
        atomic_write(self.run_dir / self.filename, lambda f: f.write(text.getvalue().encode()))


class WandbLogger(EpochLogger):
    """Weights & Biases: the hyperparameters as the run's config, one step per epoch with every history field
    (TensorBoard's tag names), the summary at the end."""

    key = "wandb"

    def __init__(self, project: str = "cutmix-repro", mode: str = "offline", entity: str | None = None):
        if mode not in ("offline", "online", "disabled"):
            raise ConfigError("logger.wandb.mode", mode, "offline (default; wandb sync later), online or disabled")
        self.project, self.mode, self.entity = project, mode, entity
        self.wandb = _require("wandb", "wandb")
        self.run = None

    def start(self, run_dir, record, hparams, name) -> None:
        super().start(run_dir, record, hparams, name)
        if "id" not in self.state:
            self.state["id"] = uuid.uuid4().hex[:8]
            self._save_state()
        self.run = self.wandb.init(project=self.project, entity=self.entity, mode=self.mode, dir=str(self.run_dir),
                                   name=name, id=self.state["id"], resume="allow", config=hparams,
                                   settings=self.wandb.Settings(console="off", silent=True))

    def write(self, history, new) -> None:
        for entry in new:
            self.run.log(_named(entry), step=entry[R.EPOCH])

    def finish(self, record) -> None:
        if self.run is not None:
            self.run.summary.update(_summary(record))
            self.run.finish(exit_code=0 if record.get(R.STATUS) in (R.FINISHED, R.INTERRUPTED) else 1)
            self.run = None


class MLflowLogger(EpochLogger):
    """MLflow: the hyperparameters as params, every history field as a metric at step = epoch, the summary and
    the status as tags at the end."""

    key = "mlflow"

    def __init__(self, tracking_uri: str | None = None, experiment: str = "cutmix-repro"):
        self.mlflow = _require("mlflow", "mlflow")
        tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "mlruns"
        uri = tracking_uri if ":" in tracking_uri.split("/")[0] else f"file:{Path(tracking_uri).resolve()}"
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.uri, self.experiment = uri, experiment
        self.client = self.mlflow.tracking.MlflowClient(uri)
        self.run_id = None

    def start(self, run_dir, record, hparams, name) -> None:
        super().start(run_dir, record, hparams, name)
        self.run_id = self.state.get("run_id")
        if self.run_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment)
            self.run_id = self.client.create_run(experiment_id, run_name=name,
                                                 tags={"run_dir": str(self.run_dir)}).info.run_id
            self.state["run_id"] = self.run_id
            self._save_state()
            params = [self.mlflow.entities.Param(k, str(v)[:6000]) for k, v in hparams.items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=params[i:i + 100])
        else:
            try:
                self.client.get_run(self.run_id)
            except self.mlflow.exceptions.MlflowException:
                raise ConfigError("logger.mlflow.tracking_uri", self.uri, f"holds no MLflow run {self.run_id}, which "
                                  f"this training run started ({STATE_FILE}): resume with the tracking URI it "
                                  "started with") from None
            self.client.update_run(self.run_id, status="RUNNING")

    def write(self, history, new) -> None:
        import time

        now = int(time.time() * 1000)
        metrics = [self.mlflow.entities.Metric(k.replace("/", "_"), float(v), now, entry[R.EPOCH])
                   for entry in new for k, v in _named(entry).items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def finish(self, record) -> None:
        if self.run_id is None:
            return
        for key, value in _summary(record).items():
            self.client.set_tag(self.run_id, key, str(value))
        status = {R.FINISHED: "FINISHED", R.INTERRUPTED: "KILLED"}.get(record.get(R.STATUS), "FAILED")
        self.client.set_terminated(self.run_id, status=status)


def _named(entry: dict[str, Any]) -> dict[str, float]:
    """An epoch's numbers by their TensorBoard tags (``val/top1_err``; other fields by their own name)."""
    return {R.TB_TAGS.get(k, k): float(v) for k, v in entry.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k != R.EPOCH}


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    keys = (R.STATUS, R.EPOCHS_DONE, R.BEST_TOP1, R.BEST_TOP5, R.BEST_EPOCH, R.LAST_TOP1, R.LAST_TOP5,
            R.BEST_TOP1_EMA, R.LAST_TOP1_EMA, "switches")
    return {k: _scalar(record[k]) for k in keys if record.get(k) not in (None, {})}
