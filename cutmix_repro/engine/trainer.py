"""The one training loop for every experiment of the paper.

Follow a batch: ``data.train`` yields a normalised batch on the device (with ``augment=``, torchvision's
policies added: ``data/augment.py``) → ``regularizer`` mixes it (or, for feature-level mixing, says where to) →
``model`` (feature map mixed at ``batch.mix_layer``) → ``mixed_cross_entropy`` → SGD step (then, with
``trainer.ema_decay``, the weight average moves: ``ema.py``) → ``Meter`` on the device → per epoch:
``evaluate`` (and the average's) → ``RunRecorder``: ``last.pt``/``best.pt``, ``results.json``, TensorBoard and
the other loggers of ``logger=[...]`` (``loggers.py``).

``fit`` reads top to bottom: check the options and the run directory, build the parts, restore a
checkpoint, loop over the epochs, finish. The epoch functions take ``StepOptions`` (precision, memory
format, label smoothing, …), not the Hydra config, so tests and benchmarks call them directly.
"""

from __future__ import annotations

import contextlib
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
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm import tqdm

from ..config import HYDRA_KEYS, build, params, recipe_switches
from ..data import DataBundle
from ..errors import ConfigError
from ..localization import LocalizationMeter
from ..models import count_parameters
from ..regularizers import MixedBatch, mixed_binary_cross_entropy, mixed_cross_entropy
from ..visuals import FirstMixedBatch
from . import distributed
from . import records as R
from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    recover_group_commit,
    remove_stale_temporaries,
    rng_state,
    set_rng_state,
)
from .compiled import CUDAGRAPH_MODES, check_compile, compile_model, compiled_graphs
from .ema import WeightEMA, check_decay
from .loggers import build_loggers
from .metrics import Meter
from .recorder import RunRecorder, Visuals
from .signals import StopRequest

log = logging.getLogger("cutmix_repro")


class TrainingDiverged(RuntimeError):
    pass


class RunDirError(ValueError):
    pass


# --- one pass ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepOptions:
    """What a training or evaluation pass needs, resolved once from the config (``from_config``)."""

    device: torch.device
    amp_dtype: torch.dtype | None = None  # autocast dtype; None = full precision
    channels_last: bool = False
    label_smoothing: float = 0.0
    loss: str = "ce"  # "ce": the paper's mixed cross-entropy; "bce": binary cross-entropy on the mixed target
    accumulate: int = 1  # forward/backward each batch in this many chunks, one optimizer step (not the paper's)
    clip_grad_norm: float | None = None  # clip the gradients' global norm before the step (not the paper's)
    log_interval: int = 50  # steps between the progress bar's updates and the NaN check (host syncs)
    progress: bool = False
    epochs: int = 1  # for the progress bar's "epoch k/N"
    cudagraphs: bool = False  # compiled with a mode that replays CUDA graphs: each step starts a new one

    def step_begins(self) -> None:
        """Tell CUDA graph trees that a new step begins (outputs of the last replay may be overwritten)."""
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()

    @classmethod
    def from_config(cls, cfg: DictConfig, device: torch.device, progress: bool) -> StepOptions:
        tcfg = cfg.trainer
        return cls(device=device, amp_dtype=amp_dtype(tcfg.amp, device),
                   channels_last=_on_for_cuda(tcfg.channels_last, device), label_smoothing=cfg.label_smoothing,
                   loss=check_loss(cfg.get("loss", "ce")), accumulate=int(tcfg.get("accumulate", 1)),
                   clip_grad_norm=tcfg.get("clip_grad_norm"),
                   log_interval=tcfg.log_interval, progress=progress, epochs=tcfg.epochs,
                   cudagraphs=bool(tcfg.compile) and tcfg.compile_mode in CUDAGRAPH_MODES)

    def autocast(self):
        dtype = self.amp_dtype or torch.float32
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.amp_dtype is not None)

    def layout(self, images: torch.Tensor) -> torch.Tensor:
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images


LOSSES = ("ce", "bce")


def loss_function(name: str):
    """The mixed loss by name, looked up when called (``ce``: the paper's; ``bce``: timm's option)."""
    return mixed_binary_cross_entropy if name == "bce" else mixed_cross_entropy


def check_loss(name: str) -> str:
    if name not in LOSSES:
        raise ConfigError("loss", name, "ce (the paper's mixed cross-entropy) or bce (binary cross-entropy on the "
                          "mixed target, timm's option)")
    return name


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    choices = {"auto": torch.bfloat16 if device.type == "cuda" else None, "off": None,
               "bf16": torch.bfloat16, "fp16": torch.float16}
    if setting not in choices:
        raise ConfigError("trainer.amp", setting, "choose auto, off, bf16 or fp16")
    return choices[setting]


def _on_for_cuda(setting, device: torch.device) -> bool:
    """Switches that default (``auto``) to on for CUDA and off for the CPU."""
    return device.type == "cuda" if setting == "auto" else bool(setting)


def train_one_epoch(model, loader, regularizer, optimizer, scaler, options: StepOptions, epoch: int,
                    meter: Meter | None = None, start_step: int = 0, stop: StopRequest | None = None,
                    snapshot: FirstMixedBatch | None = None, ema: WeightEMA | None = None) -> dict:
    """One pass over the training shard; metrics stay on the device until the epoch ends.

    Returns the epoch's metrics, or ``{"interrupted": True, "step": k, "meter": ...}`` when a
    stop was requested (checked after every step; under DDP every few steps, where all ranks
    agree). ``start_step``/``meter`` continue an epoch from a checkpoint. ``snapshot`` is offered
    each batch (after the forward pass, when a feature-level λ is known) until one is mixed. ``ema``, if given,
    moves towards the new weights after every step."""
    model.train()
    device = options.device
    meter = meter or Meter(device)
    first_bad = torch.full((), -1, dtype=torch.long, device=device)
    step_on_device = torch.full((), start_step, dtype=torch.long, device=device)  # the NaN check reads no host value
    distributed_run = distributed.world_size() > 1
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{options.epochs}", disable=not options.progress, leave=False,
               dynamic_ncols=True)
    start, count_before = time.perf_counter(), meter.count
    step, last_step = start_step, start_step + len(loader)
    for images, targets in bar:
        options.step_begins()
        batch = regularizer(images, targets)
        if options.accumulate == 1:  # the paper's step, exactly
            with options.autocast():
                logits = model(options.layout(batch.inputs), mix_layer=batch.mix_layer, mix_fn=batch.mix_fn)
            loss = loss_function(options.loss)(logits.float(), batch, options.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            meter.update(logits, batch.targets_a, loss)  # train error against each image's own label
        else:
            optimizer.zero_grad(set_to_none=True)
            loss = _accumulate(model, batch, scaler, options, meter)
        if snapshot is not None and not snapshot.done:
            snapshot.offer(batch)
        if options.clip_grad_norm is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), options.clip_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        if ema is not None:
            ema.update()
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step_on_device, first_bad)
        step_on_device += 1
        step += 1
        if step % options.log_interval == 0:  # the only host-device syncs of the step
            _check_finite(first_bad, epoch)
            if options.progress:
                m = meter.compute(distributed=False)
                bar.set_postfix(loss=f"{m['loss']:.3f}", top1_err=f"{m['top1_err']:.1f}")
        if stop is not None and _stop_agreed(stop, step, step == last_step, distributed_run):
            _check_finite(first_bad, epoch)
            bar.close()
            return {"interrupted": True, "step": step, "meter": meter}
    _check_finite(first_bad, epoch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    metrics = meter.compute()
    images = (meter.count - count_before) * distributed.world_size()  # this call's images, all ranks
    metrics[R.IMAGES_PER_S] = images / max(seconds, 1e-9)
    return metrics


def _accumulate(model, batch: MixedBatch, scaler, options: StepOptions, meter: Meter) -> torch.Tensor:
    """``trainer.accumulate`` (not the paper's recipe): the batch, mixed as a whole (one λ, one permutation, as the
    large batch), goes forward and backward in ``accumulate`` chunks, each loss weighted by its share of the
    batch, so the summed gradient is the large batch's (BatchNorm aside: its statistics are each chunk's).
    Under DDP only the last chunk's backward all-reduces. Returns the batch's loss."""
    if batch.mix_fn is not None:
        raise ConfigError("trainer.accumulate", options.accumulate, "feature-level mixing mixes within the batch "
                          "the network sees: use trainer.accumulate=1 with it")
    n, total = batch.inputs.shape[0], 0.0
    bounds = [(n * k // options.accumulate, n * (k + 1) // options.accumulate) for k in range(options.accumulate)]
    bounds = [(a, b) for a, b in bounds if b > a]  # a last batch smaller than the chunk count has empty chunks
    for k, (a, b) in enumerate(bounds):
        lam = batch.lam[a:b] if isinstance(batch.lam, torch.Tensor) and batch.lam.dim() else batch.lam
        piece = MixedBatch(batch.inputs[a:b], batch.targets_a[a:b], batch.targets_b[a:b], lam)
        sync = k == len(bounds) - 1 or not hasattr(model, "no_sync")
        with contextlib.nullcontext() if sync else model.no_sync():
            with options.autocast():
                logits = model(options.layout(piece.inputs))
            loss = loss_function(options.loss)(logits.float(), piece, options.label_smoothing)
            scaler.scale(loss * ((b - a) / n)).backward()
        meter.update(logits, piece.targets_a, loss)
        total = total + loss.detach() * ((b - a) / n)
    return total


STOP_CHECK_EVERY = 10  # steps between DDP ranks' agreement on a stop request (one tiny all-reduce)


def _stop_agreed(stop: StopRequest, step: int, last_step: bool, distributed_run: bool) -> bool:
    """A single process stops at once; DDP ranks agree (all-reduce) every few steps and at the
    end of the epoch, so that all of them stop after the same step."""
    if not distributed_run:
        return stop.requested
    if step % STOP_CHECK_EVERY and not last_step:
        return False
    flag = torch.tensor([1.0 if stop.requested else 0.0], device=distributed.collective_device())
    return bool(distributed.all_reduce_sum(flag).item() > 0)


def _check_finite(first_bad: torch.Tensor, epoch: int) -> None:
    step = int(first_bad.item())
    if step >= 0:
        raise TrainingDiverged(f"loss became NaN or infinite at epoch {epoch + 1}, step {step + 1}")


@torch.no_grad()
def evaluate(model, loader, options: StepOptions) -> dict:
    """Loss and top-1/top-5 error over the whole test set, each image counted once across ranks; on data
    with boxes (batches of images, labels, boxes) also the localization accuracies of the CAMs."""
    model.eval()
    meter, located = Meter(options.device), None
    for images, targets, *boxes in loader:
        options.step_begins()
        with options.autocast():
            if boxes:  # one forward pass for both: the head is pooling + linear (``head_parts``)
                features = model.forward_features(options.layout(images)).float()
                classifier = model.head_parts()[1]
                with torch.autocast(options.device.type, enabled=False):  # the classifier in fp32, as in forward
                    logits = classifier(features.mean((2, 3)))
            else:
                logits = model(options.layout(images)).float()
        meter.update(logits, targets, F.cross_entropy(logits, targets))
        if boxes:
            located = located or LocalizationMeter(options.device)
            located.update(features, classifier, images.shape[-2:], targets, boxes[0], logits)
    return {**meter.compute(), **(located.compute() if located else {})}


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

    @property
    def meta(self) -> dict[str, Any]:
        """What a checkpoint must agree on to be resumed by this run."""
        return {"model": self.model.arch_name, "dataset": self.data.name, "num_classes": self.data.num_classes,
                "num_params": count_parameters(self.model)}


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
    model = build(cfg.model, "model", num_classes=data.num_classes).to(device)
    if options.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build(cfg.optimizer, "optimizer", model=model)
    scheduler = build(cfg.scheduler, "scheduler", optimizer=optimizer, epochs=tcfg.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=options.amp_dtype == torch.float16)
    decay = check_decay(tcfg.get("ema_decay"))
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
    return Parts(data, regularizer, model, train_model, optimizer, scheduler, scaler, options,
                 OmegaConf.to_container(cfg, resolve=True), compiled, ema)


def checkpoint_state(parts: Parts, position: Position) -> dict[str, Any]:
    return {"model": parts.model.state_dict(), "optimizer": parts.optimizer.state_dict(),
            "scheduler": parts.scheduler.state_dict(), "scaler": parts.scaler.state_dict(),
            "epoch": position.epoch, "step": position.step,
            "meter": position.meter.state() if position.meter else None, "rng": rng_state(parts.options.device),
            "history": position.history, "meta": parts.meta, "config": parts.config,
            "ema": parts.ema.state_dict() if parts.ema else None}


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
        recover_group_commit(run_dir)  # a fused group's checkpoints, replaced together (engine/fused.py)
    if check_run_dir(run_dir, cfg, resume):
        log.info("run in %s already finished its %d epochs; nothing to do", run_dir, cfg.trainer.epochs)
        return json.loads((run_dir / "results.json").read_text())
    if info.is_main:
        remove_stale_temporaries(run_dir)

    logger_nodes = cfg.get("logger") or {}  # built first: a missing package is one line, before anything is written
    loggers = build_loggers(logger_nodes, build) if info.is_main else []
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    nondeterminism = _set_determinism(bool(cfg.trainer.deterministic), device)
    parts = build_parts(cfg, info, device)
    position = Position()
    if resume and (run_dir / "last.pt").exists():
        position = restore(parts, run_dir / "last.pt")
    elif resume:
        log.info("no checkpoint in %s yet: starting fresh", run_dir)

    choices = choices or {}
    record = describe_run(cfg, parts, info, choices, nondeterminism)
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
        lr = parts.optimizer.param_groups[0]["lr"]
        snapshot = recorder.snapshot()
        train = train_one_epoch(parts.train_model, parts.data.train, parts.regularizer, parts.optimizer, parts.scaler,
                                parts.options, epoch, meter=position.meter, start_step=position.step, stop=stop,
                                snapshot=snapshot, ema=parts.ema)
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


def describe_run(cfg: DictConfig, parts: Parts, info: distributed.DistInfo, choices: dict[str, str],
                 nondeterminism: dict[str, Any]) -> dict[str, Any]:
    """The header of ``results.json``: what was trained, how, where, with which code."""
    tcfg, device = cfg.trainer, parts.options.device
    return {
        R.STATUS: R.RUNNING,
        "dataset": parts.data.name,
        "model": parts.model.arch_name,
        "model_target": cfg.model._target_,
        "model_options": params(cfg.model),
        "regularizer": choices.get("regularizer", type(parts.regularizer).__name__),
        "regularizer_target": cfg.regularizer._target_,
        "regularizer_params": params(cfg.regularizer),
        "label_smoothing": cfg.label_smoothing,
        "switches": recipe_switches(cfg),  # what is not the paper's recipe (empty for the paper's)
        "experiment": choices.get("experiment"),
        "seed": cfg.seed,
        "epochs": tcfg.epochs,
        "batch_size": tcfg.batch_size,
        "lr": tcfg.lr,
        "num_params": count_parameters(parts.model),
        "world_size": info.world_size,
        "device": str(device),
        "amp": str(parts.options.amp_dtype),
        "channels_last": parts.options.channels_last,
        "compile": bool(tcfg.compile),
        "compiled": parts.compiled,
        "compile_mode": tcfg.compile_mode if tcfg.compile else None,
        "nondeterminism": nondeterminism,
        "versions": R.package_versions(),
        "git_revision": R.git_revision(),
        "machine": R.machine(),
    }


# trainer keys that say how a run is kept, not what it trains: not shown among the hyperparameters
_BOOKKEEPING = {"trainer.resume", "trainer.overwrite", "trainer.progress", "trainer.log_interval"}


def hparams(cfg: DictConfig, groups: dict[str, Any] | None = None) -> dict[str, Any]:
    """For TensorBoard's HParams: the config-group choices (``groups``: experiment, dataset, model,
    regularizer; those that are set), then every scalar of the resolved config by its dotted key (lists as
    text)."""
    out: dict[str, Any] = {k: v for k, v in (groups or {}).items() if v is not None}

    def walk(node, prefix):
        for key, value in node.items():
            name = f"{prefix}{key}"
            if key in HYDRA_KEYS or name in _BOOKKEEPING or name == "logger" or value is None:
                continue
            if isinstance(value, dict):
                walk(value, f"{name}.")
            else:
                out[name] = value if isinstance(value, int | float | str | bool) else str(value)

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return out


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
