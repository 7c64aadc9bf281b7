"""The one training loop for every experiment of the paper.

Follow a batch: ``data.train`` yields a normalised batch on the device (with ``augment=``, torchvision's
policies added: ``data/augment.py``) → ``regularizer`` mixes it (or, for feature-level mixing, says where to) →
``model`` (feature map mixed at ``batch.mix_layer``) → ``mixed_cross_entropy`` → SGD step (then, with
``trainer.ema_decay``, the weight average moves: ``ema.py``) → ``Meter`` on the device → per epoch:
``evaluate`` (and the average's) → ``RunRecorder``: ``last.pt``/``best.pt``, ``results.json``, TensorBoard and
the other loggers of ``logger=[...]`` (``loggers.py``).

``fit`` reads top to bottom: check the options and the run directory, build the parts, restore a
checkpoint, loop over the epochs, finish. One pass over the data (the step, ``trainer.accumulate``, the
evaluation) is ``engine/step.py``; it takes ``StepOptions`` (precision, memory format, label smoothing, …), not
the Hydra config, so tests and benchmarks call it directly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ..config import build
from ..data import DataBundle
from ..errors import ConfigError
from ..models import count_parameters, model_inputs
from . import distributed
from . import records as R
from .captured import CapturedStep, make_captured
from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    recover_group_commit,
    remove_stale_temporaries,
    rng_state,
    set_rng_state,
)
from .compiled import check_compile, compile_model, compiled_graphs
from .ema import WeightEMA, check_decay
from .layout import auto_layout
from .loggers import build_loggers
from .metrics import Meter
from .recorder import RunRecorder, Visuals, hparams
from .signals import StopRequest
from .step import StepOptions, TrainingDiverged, evaluate, train_one_epoch

log = logging.getLogger("cutmix_repro")


class RunDirError(ValueError):
    pass


# --- the parts of a run ----------------------------------------------------------------------------------
@dataclass
class Parts:
    """Everything ``fit`` builds from the config."""

    data: DataBundle
    regularizer: Any
    model: nn.Module  # what is saved and evaluated
    train_model: nn.Module  # what trains: the model, or its SyncBatchNorm/DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    options: StepOptions
    config: dict[str, Any]  # the resolved config, kept in every checkpoint (a checkpoint rebuilds its run)
    compiled: str | None = None  # what trainer.compile compiled: "model", "stages" or None
    ema: WeightEMA | None = None  # trainer.ema_decay: the moving average of the weights (not the paper's)
    captured: CapturedStep | None = None  # trainer.capture on CUDA: each full batch's step as one CUDA graph
    layout_probe: dict[str, Any] | None = None  # trainer.channels_last=auto on the CPU: both layouts timed (layout.py)

    @property
    def meta(self) -> dict[str, Any]:
        """What a checkpoint must agree on to be resumed by this run."""
        meta = {"model": self.model.arch_name, "dataset": self.data.name, "num_classes": self.data.num_classes,
                "num_params": count_parameters(self.model)}
        if self.data.in_chans != 3:  # one-channel data (Fashion-MNIST): the model is rebuilt with its channels
            meta["in_chans"] = self.data.in_chans
        return meta


@dataclass
class Position:
    """Where training stands: epochs done, steps done of the next epoch, the history so far."""

    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    meter: Meter | None = None  # the metrics of a partly done epoch


def check_trainer(tcfg: DictConfig, world_size: int) -> None:
    for key in ("batch_size", "epochs", "log_interval"):
        if tcfg[key] < 1:
            raise ConfigError(f"trainer.{key}", tcfg[key], "must be >= 1")
    threads = tcfg.get("threads")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError("trainer.threads", threads, "a number of CPU threads >= 1, or null for PyTorch's default "
                          f"({torch.get_num_threads()} here)")
    if tcfg.compile:
        check_compile(tcfg.compile_mode, tcfg.compile_backend)
    if tcfg.batch_size % world_size:
        raise ConfigError("trainer.batch_size", tcfg.batch_size,
                          f"with {world_size} processes the global batch must be a multiple of the world size")
    accumulate = tcfg.get("accumulate", 1)
    if accumulate < 1 or (tcfg.batch_size // world_size) % accumulate:
        raise ConfigError("trainer.accumulate", accumulate, f"a divisor (>= 1) of each process's batch of "
                          f"{tcfg.batch_size // world_size}")
    check_decay(tcfg.get("ema_decay"))
    clip = tcfg.get("clip_grad_norm")
    if clip is not None and not clip > 0:
        raise ConfigError("trainer.clip_grad_norm", clip, "a norm > 0, or null for no clipping")


def requeued() -> bool:
    """SLURM sets SLURM_RESTART_COUNT when it requeues a job (preemption, submitit's timeout)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def check_run_dir(run_dir: Path, cfg: DictConfig, resume: bool) -> bool:
    """Refuse to overwrite a run unless told. Returns True when the run is already finished."""
    results, last = run_dir / "results.json", run_dir / "last.pt"
    try:
        recorded = json.loads(results.read_text()) if results.exists() else {}
    except (OSError, json.JSONDecodeError):
        recorded = {}
    finished = recorded.get(R.STATUS) == R.FINISHED and recorded.get(R.EPOCHS_DONE, 0) >= cfg.trainer.epochs
    if resume:
        return finished
    if recorded or last.exists():
        if not cfg.trainer.overwrite:
            what = "a finished run" if recorded.get(R.STATUS) == R.FINISHED else "an unfinished run"
            raise RunDirError(
                f"hydra.run.dir={str(run_dir)!r} already holds {what}: pass trainer.resume=true to continue it "
                "or trainer.overwrite=true to replace it"
            )
        csv_file = ((cfg.get("logger") or {}).get("csv") or {}).get("filename", "summary.csv")
        for name in ("results.json", "last.pt", "best.pt", "loggers.json", csv_file):
            (run_dir / name).unlink(missing_ok=True)
        for folder in ("tb", "wandb"):
            shutil.rmtree(run_dir / folder, ignore_errors=True)
    return False


def build_parts(cfg: DictConfig, info: distributed.DistInfo, device: torch.device) -> Parts:
    """Regularizer first (cheap: bad values stop before any data loads), then data, model, optimizer."""
    tcfg = cfg.trainer
    options = StepOptions.from_config(cfg, device, progress=bool(tcfg.progress) and info.is_main)
    regularizer = build(cfg.regularizer, "regularizer")
    augment = build(cfg.augment, "augment") if cfg.get("augment") is not None else None
    data = build(cfg.dataset, "dataset", batch_size=tcfg.batch_size // info.world_size, device=device,
                 seed=cfg.seed, rank=info.rank, world_size=info.world_size, drop_last=tcfg.drop_last,
                 augment=augment)
    if data.train.dataset_size < info.world_size:
        raise ValueError(f"world_size={info.world_size} (processes) is larger than the {data.train.dataset_size} "
                         "training images: every process needs at least one")
    model = build(cfg.model, "model", **model_inputs(data.num_classes, data.in_chans)).to(device)
    optimizer = build(cfg.optimizer, "optimizer", model=model)
    scheduler = build(cfg.scheduler, "scheduler", optimizer=optimizer, epochs=tcfg.epochs)
    decay = check_decay(tcfg.get("ema_decay"))
    # after every check of the config (a bad value stops before the measurement); the layout changes the
    # parameters in place, so the optimizer keeps them
    layout_probe = auto_layout(tcfg.channels_last, device, info.world_size, model, data, tcfg.batch_size)
    if layout_probe is not None:  # trainer.channels_last=auto on the CPU: measured, not assumed
        options = dataclasses.replace(options, channels_last=layout_probe["chosen"] == "channels_last")
    if options.channels_last:
        model.to(memory_format=torch.channels_last)
    scaler = torch.amp.GradScaler(device.type, enabled=options.amp_dtype == torch.float16)
    ema = WeightEMA(model, decay) if decay else None  # a copy of the model: before torch.compile changes it
    train_model = model
    if tcfg.sync_bn and info.enabled:
        train_model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    compiled = None
    if tcfg.compile:  # in place (state_dict keys unchanged): the whole model, or per stage for feature mixing
        compiled = compile_model(model, bool(getattr(regularizer, "mixes_features", False)), tcfg.compile_mode,
                                 tcfg.compile_backend)
    if info.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            train_model, device_ids=[device.index] if device.type == "cuda" else None)
    captured = make_captured(cfg, regularizer, train_model, optimizer, options, info.world_size)
    return Parts(data, regularizer, model, train_model, optimizer, scheduler, scaler, options,
                 OmegaConf.to_container(cfg, resolve=True), compiled, ema, captured, layout_probe)


def checkpoint_state(parts: Parts, position: Position) -> dict[str, Any]:
    optimizer = parts.optimizer.state_dict()
    for group in optimizer["param_groups"]:  # trainer.capture keeps the lr in a device tensor: saved as a number
        if isinstance(group.get("lr"), torch.Tensor):
            group["lr"] = float(group["lr"])
    return {"model": parts.model.state_dict(), "optimizer": optimizer,
            "scheduler": parts.scheduler.state_dict(), "scaler": parts.scaler.state_dict(),
            "epoch": position.epoch, "step": position.step,
            "meter": position.meter.state() if position.meter else None, "rng": rng_state(parts.options.device),
            "history": position.history, "meta": parts.meta, "config": parts.config,
            "ema": parts.ema.state_dict() if parts.ema else None, "channels_last": parts.options.channels_last}


def restore(parts: Parts, path: Path) -> Position:
    """The position saved in ``path`` (``last.pt``), with weights, optimizer, scheduler and RNG states."""
    state = load_checkpoint(path, parts.meta)
    parts.model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    parts.scaler.load_state_dict(state["scaler"])
    if parts.ema is not None:
        if not state.get("ema"):
            raise CheckpointError(f"checkpoint {str(path)!r} holds no weight EMA: resume it with "
                                  "trainer.ema_decay=null, or start a new run with the EMA")
        parts.ema.load_state_dict(state["ema"])
    if state.get("channels_last", parts.options.channels_last) != parts.options.channels_last:
        parts.options = dataclasses.replace(parts.options, channels_last=state["channels_last"])  # its own layout
        parts.model.to(memory_format=torch.channels_last if state["channels_last"] else torch.contiguous_format)
    set_rng_state(state["rng"], parts.options.device)
    position = Position(state["epoch"], state["step"], list(state["history"]))
    if position.step:
        position.meter = Meter(parts.options.device)
        position.meter.load_state(state["meter"])
    log.info("resumed from %s at epoch %d, step %d", path, position.epoch + 1, position.step)
    return position


# --- the run -------------------------------------------------------------------------------------------
@dataclass
class Started:
    """A run ready for its epochs: built, restored, recording (``start_run``)."""

    cfg: DictConfig
    run_dir: Path
    parts: Parts
    position: Position
    recorder: RunRecorder
    record: dict[str, Any]


def start_run(cfg: DictConfig, run_dir: Path, choices: dict[str, str] | None, info: distributed.DistInfo,
              device: torch.device) -> Started | dict[str, Any]:
    """Everything before the first epoch: check the options and the run directory, seed, build the parts,
    restore a checkpoint, start the recorder. Returns the recorded results instead when the run is finished."""
    check_trainer(cfg.trainer, info.world_size)
    resume = bool(cfg.trainer.resume) or requeued()
    if info.is_main:
        recover_group_commit(run_dir)  # a fused group's checkpoints, replaced together (fusion/loop.py)
    if check_run_dir(run_dir, cfg, resume):
        log.info("run in %s already finished its %d epochs; nothing to do", run_dir, cfg.trainer.epochs)
        return json.loads((run_dir / "results.json").read_text())
    if info.is_main:
        remove_stale_temporaries(run_dir)

    logger_nodes = cfg.get("logger") or {}  # built first: a missing package is one line, before anything is written
    loggers = build_loggers(logger_nodes, build) if info.is_main else []
    threads = cfg.trainer.get("threads")
    if threads is not None:  # CPU: intra-op threads of this process (several runs side by side: one or two each)
        torch.set_num_threads(int(threads))
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    nondeterminism = _set_determinism(bool(cfg.trainer.deterministic), device)
    parts = build_parts(cfg, info, device)
    position = Position()
    if resume and (run_dir / "last.pt").exists():
        position = restore(parts, run_dir / "last.pt")
        if parts.captured is not None:  # the restored lr, into the tensor the graph will read
            parts.captured.sync_lr()
    elif resume:
        log.info("no checkpoint in %s yet: starting fresh", run_dir)

    choices = choices or {}
    record = R.describe_run(cfg, parts, info.world_size, choices, nondeterminism)
    visuals = Visuals(bool(cfg.trainer.tb_mixed_batch), int(cfg.trainer.tb_cams_every), parts.data)
    groups = {"experiment": record["experiment"], "dataset": choices.get("dataset", record["dataset"]),
              "model": choices.get("model", record["model"]), "regularizer": record["regularizer"],
              "scheduler": choices.get("scheduler", cfg.scheduler._target_.rsplit(".", 1)[-1]),
              "augment": choices.get("augment", cfg.augment.policy if cfg.get("augment") else None)}
    marks = [f"{k}={v.split('(')[0]} (not the paper's)" for k, v in record["switches"].items()]
    session = " · ".join(str(v) for v in (record["regularizer"], record["model"], record["dataset"], *marks,
                                          run_dir.name))
    recorder = RunRecorder(run_dir, record, hparams(cfg, groups), info.is_main, start_epoch=position.epoch,
                           fresh=(position.epoch, position.step) == (0, 0), visuals=visuals, session_name=session,
                           tensorboard="tensorboard" in logger_nodes, loggers=loggers)
    return Started(cfg, run_dir, parts, position, recorder, record)


def fit(cfg: DictConfig, run_dir: Path, choices: dict[str, str] | None = None) -> dict[str, Any]:
    """Train and evaluate as ``cfg`` says; write everything into ``run_dir``. Returns results."""
    info, device = distributed.setup(cfg.trainer.device)
    run_dir = Path(run_dir)
    if not info.is_main:
        log.setLevel(logging.WARNING)
    run = start_run(cfg, run_dir, choices, info, device)
    if not isinstance(run, Started):
        return run
    parts, position, recorder, record = run.parts, run.position, run.recorder, run.record
    stop = StopRequest().install()  # before the line that says training starts: a signal after it is caught
    log.info("%s | %s (%s parameters) | %s | %d epochs on %s x%d", parts.data.name, parts.model.arch_name,
             f"{record['num_params']:,}", parts.regularizer, cfg.trainer.epochs, device, info.world_size)
    try:
        train_epochs(parts, position, recorder, stop, cfg.trainer.epochs)
        if recorder.record[R.STATUS] == R.INTERRUPTED:
            log.info("stopped by %s at epoch %d, step %d; checkpoint written to %s: run again with "
                     "trainer.resume=true to continue", stop.name, position.epoch + 1, position.step,
                     run_dir / "last.pt")
            recorder.close()
            distributed.barrier()
            stop.hand_over()  # e.g. submitit's requeue on SIGUSR2
        elif info.enabled:  # every rank's weights, to show they agree
            weights = sum(float(p.detach().double().sum()) for p in parts.model.parameters())
            recorder.finished(rank_weight_checksums=distributed.gather_floats(weights))
    except TrainingDiverged as err:
        raise TrainingDiverged(diverged(run, str(err))) from None
    finally:
        stop.restore()
        recorder.close()
    return recorder.record


def diverged(run: Started, error: str) -> str:
    """Record a run whose loss became NaN or infinite; the error line, naming the last good checkpoint."""
    history = run.position.history
    good = (f"{run.run_dir / 'last.pt'} (after epoch {history[-1][R.EPOCH]})" if history
            else "none (no epoch finished)")
    message = f"{error}; training stopped, the last good checkpoint is {good}"
    run.recorder.stopped(R.DIVERGED, history, error=message)
    return message


def train_epochs(parts: Parts, position: Position, recorder: RunRecorder, stop: StopRequest, epochs: int) -> None:
    """The epochs from ``position`` on; ``position`` follows along (for a checkpoint or an error)."""
    wall_before = position.history[-1][R.WALL_TIME] if position.history else 0.0
    started, cold = time.perf_counter(), True
    while position.epoch < epochs:
        epoch = position.epoch
        parts.data.train.set_epoch(epoch, position.step)
        if hasattr(parts.regularizer, "set_progress"):  # Table 8's scheduled probability
            parts.regularizer.set_progress(epoch / max(epochs - 1, 1))
        lr = float(parts.optimizer.param_groups[0]["lr"])
        snapshot = recorder.snapshot()
        train = train_one_epoch(parts.train_model, parts.data.train, parts.regularizer, parts.optimizer, parts.scaler,
                                parts.options, epoch, meter=position.meter, start_step=position.step, stop=stop,
                                snapshot=snapshot, ema=parts.ema, captured=parts.captured)
        if train.get("interrupted"):
            position.step, position.meter = train["step"], train["meter"]
            recorder.stopped(R.INTERRUPTED, position.history, state=checkpoint_state(parts, position))
            return
        distributed.broadcast_buffers(parts.model)  # evaluate what rank 0 saves (BN statistics)
        val = evaluate(parts.model, parts.data.val, parts.options)
        if parts.ema is not None:  # the moving average, beside the raw model (its BatchNorm statistics: rank 0's)
            distributed.broadcast_buffers(parts.ema.module)
            val_ema = evaluate(parts.ema.module, parts.data.val, parts.options)
        parts.scheduler.step()
        if parts.captured is not None:
            parts.captured.sync_lr()
        images_s = recorder.log_images(epoch, snapshot, parts.model, last_epoch=epoch + 1 == epochs)
        entry = {R.EPOCH: epoch + 1, R.LR: lr, R.TRAIN_LOSS: train["loss"], R.TRAIN_TOP1: train["top1_err"],
                 R.VAL_LOSS: val["loss"], R.VAL_TOP1: val["top1_err"], R.VAL_TOP5: val["top5_err"],
                 R.VAL_COUNT: val["count"], R.IMAGES_PER_S: train[R.IMAGES_PER_S], R.COLD_START: cold,
                 R.TB_IMAGES_S: images_s, R.WALL_TIME: wall_before + time.perf_counter() - started}
        if parts.compiled:
            counts = compiled_graphs()
            entry.update({R.COMPILED_GRAPHS: counts["graphs"], R.GRAPH_BREAKS: counts["graph_breaks"]})
        cold = False
        if parts.ema is not None:
            entry.update({R.VAL_LOSS_EMA: val_ema["loss"], R.VAL_TOP1_EMA: val_ema["top1_err"],
                          R.VAL_TOP5_EMA: val_ema["top5_err"]})
        entry.update({field: val[key] for key, field in R.LOCALIZATION.items() if key in val})
        if distributed.world_size() > 1:
            entry[R.RANK_VAL_TOP1] = distributed.gather_floats(val["top1_err"])
        position.history.append(entry)
        position.epoch, position.step, position.meter = epoch + 1, 0, None
        recorder.epoch_done(entry, position.history, checkpoint_state(parts, position), epochs)
        distributed.barrier()


CUBLAS_WORKSPACE = ":4096:8"  # what cuBLAS needs for deterministic results (CUDA docs, "Reproducibility")


def _set_determinism(deterministic: bool, device: torch.device) -> dict[str, Any]:
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)  # read when cuBLAS starts its handle
        torch.use_deterministic_algorithms(True, warn_only=True)
    return {
        "deterministic_algorithms": deterministic,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "note": ("bit-exact given the seed on the CPU; on CUDA, cuDNN autotuning and atomic adds make "
                 "runs differ slightly unless trainer.deterministic=true"),
    }
