"""The one training loop for every experiment of the paper.

Follow a batch: ``data.train`` yields a normalised batch on the device → ``regularizer``
mixes it (or, for feature-level mixing, says where to) → ``model`` (feature map mixed at
``batch.mix_layer``) → ``mixed_cross_entropy`` → SGD step → ``Meter`` on the device →
per epoch: evaluation, TensorBoard scalars, ``results.json``, ``last.pt``/``best.pt``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from ..models import count_parameters
from ..regularizers import mixed_cross_entropy
from . import distributed
from .checkpoint import (
    load_checkpoint,
    remove_stale_temporaries,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_json,
)
from .metrics import Meter
from .records import git_revision, machine, package_versions, summarize
from .signals import StopRequest

log = logging.getLogger("cutmix_repro")


class TrainingDiverged(RuntimeError):
    pass


class RunDirError(ValueError):
    pass


def build(node: DictConfig, key: str, **kwargs):
    """``hydra.utils.instantiate`` whose errors name the config key (one line, no traceback)."""
    try:
        return instantiate(node, **kwargs)
    except Exception as err:
        cause = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        msg = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        first = msg.split("=", 1)[0]
        if "=" in msg and first.isidentifier():
            raise ValueError(f"{key}.{msg}") from None  # "alpha=0 is invalid" → "regularizer.alpha=0 …"
        if msg.startswith(("dataset.", "model ", "world_size", "trainer.")):
            raise ValueError(msg) from None
        raise ValueError(f"{key}: {msg}") from None


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    choices = {"auto": torch.bfloat16 if device.type == "cuda" else None, "off": None,
               "bf16": torch.bfloat16, "fp16": torch.float16}
    if setting not in choices:
        raise ValueError(f"trainer.amp={setting!r} is invalid: choose auto, off, bf16 or fp16")
    return choices[setting]


def train_one_epoch(model, loader, regularizer, optimizer, scaler, cfg, device, epoch, progress,
                    meter: Meter | None = None, start_step: int = 0, stop: StopRequest | None = None) -> dict:
    """One pass over the training shard; metrics stay on the device until the epoch ends.

    Returns the epoch's metrics, or ``{"interrupted": True, "step": k, "meter": ...}`` when a
    stop was requested (checked after every step; under DDP every few steps, where all ranks
    agree). ``start_step``/``meter`` continue an epoch from a checkpoint."""
    model.train()
    meter = meter or Meter(device)
    first_bad = torch.full((), -1, dtype=torch.long, device=device)
    dtype = amp_dtype(cfg.trainer.amp, device)
    channels_last = _flag(cfg.trainer.channels_last, device)
    log_interval = cfg.trainer.log_interval
    distributed_run = distributed.world_size() > 1
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.trainer.epochs}", disable=not progress, leave=False,
               dynamic_ncols=True)
    start, count_before = time.perf_counter(), meter.count
    step, last_step = start_step, start_step + len(loader)
    for images, targets in bar:
        batch = regularizer(images, targets)
        inputs = batch.inputs.contiguous(memory_format=torch.channels_last) if channels_last else batch.inputs
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(inputs, mix_layer=batch.mix_layer, mix_fn=batch.mix_fn)
        loss = mixed_cross_entropy(logits.float(), batch, cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        meter.update(logits, batch.targets_a, loss)  # train error against each image's own label
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
        step += 1
        if step % log_interval == 0:  # the only host-device syncs of the step
            _check_finite(first_bad, epoch)
            if progress:
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
    metrics["images_per_s"] = images / max(seconds, 1e-9)
    return metrics


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
def evaluate(model, loader, cfg, device) -> dict:
    """Top-1/top-5 error over the whole test set, each image counted once across ranks."""
    model.eval()
    meter = Meter(device)
    dtype = amp_dtype(cfg.trainer.amp, device)
    channels_last = _flag(cfg.trainer.channels_last, device)
    for images, targets in loader:
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(images).float()
        meter.update(logits, targets, F.cross_entropy(logits, targets))
    return meter.compute()


def _flag(setting, device: torch.device) -> bool:
    """Switches that default to on for CUDA and off for the CPU."""
    return device.type == "cuda" if setting == "auto" else bool(setting)


def requeued() -> bool:
    """SLURM sets SLURM_RESTART_COUNT when it requeues a job (preemption, submitit's timeout)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def check_run_dir(run_dir: Path, cfg: DictConfig, resume: bool) -> bool:
    """Refuse to overwrite a run unless told. Returns True when the run is already finished."""
    results, last = run_dir / "results.json", run_dir / "last.pt"
    try:
        recorded = json_load(results) if results.exists() else {}
    except (OSError, json.JSONDecodeError):
        recorded = {}
    finished = recorded.get("status") == "finished" and recorded.get("epochs_done", 0) >= cfg.trainer.epochs
    if resume:
        return finished
    if recorded or last.exists():
        if not cfg.trainer.overwrite:
            what = "a finished run" if recorded.get("status") == "finished" else "an unfinished run"
            raise RunDirError(
                f"hydra.run.dir={str(run_dir)!r} already holds {what}: pass trainer.resume=true to continue it "
                "or trainer.overwrite=true to replace it"
            )
        for name in ("results.json", "last.pt", "best.pt"):
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "tb", ignore_errors=True)
    return False


def fit(cfg: DictConfig, run_dir: Path, choices: dict[str, str] | None = None) -> dict[str, Any]:
    """Train and evaluate as ``cfg`` says; write everything into ``run_dir``. Returns results."""
    tcfg = cfg.trainer
    info, device = distributed.setup(tcfg.device)
    run_dir = Path(run_dir)
    if not info.is_main:
        log.setLevel(logging.WARNING)
    if tcfg.batch_size < 1:
        raise ValueError(f"trainer.batch_size={tcfg.batch_size!r} is invalid: must be >= 1")
    if tcfg.epochs < 1:
        raise ValueError(f"trainer.epochs={tcfg.epochs!r} is invalid: must be >= 1")
    if tcfg.log_interval < 1:
        raise ValueError(f"trainer.log_interval={tcfg.log_interval!r} is invalid: must be >= 1")
    if tcfg.batch_size % info.world_size:
        raise ValueError(f"trainer.batch_size={tcfg.batch_size} is invalid with {info.world_size} processes: "
                         "the global batch must be a multiple of the world size")
    resume = bool(tcfg.resume) or requeued()
    if check_run_dir(run_dir, cfg, resume):
        log.info("run in %s already finished its %d epochs; nothing to do", run_dir, tcfg.epochs)
        return json_load(run_dir / "results.json")
    if info.is_main:
        remove_stale_temporaries(run_dir)

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    nondeterminism = _set_determinism(bool(tcfg.deterministic), device)
    regularizer = build(cfg.regularizer, "regularizer")  # cheap: bad values stop before any data loads
    dtype = amp_dtype(tcfg.amp, device)
    data = build(cfg.dataset, "dataset", batch_size=tcfg.batch_size // info.world_size, device=device,
                 seed=cfg.seed, rank=info.rank, world_size=info.world_size, drop_last=tcfg.drop_last)
    model = build(cfg.model, "model", num_classes=data.num_classes)
    num_params = count_parameters(model)
    model.to(device)
    if _flag(tcfg.channels_last, device):
        model.to(memory_format=torch.channels_last)
    optimizer = build(cfg.optimizer, "optimizer")(params=model.parameters())
    scheduler = build(cfg.scheduler, "scheduler")(optimizer=optimizer, epochs=tcfg.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    meta = {"model": cfg.model.get("name"), "dataset": data.name, "num_classes": data.num_classes,
            "num_params": num_params}
    start_epoch, start_step, history, resumed_meter = 0, 0, [], None
    last_path = run_dir / "last.pt"
    if resume and last_path.exists():
        state = load_checkpoint(last_path, meta)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"], device)
        start_epoch, start_step, history = state["epoch"], state.get("step", 0), list(state["history"])
        if start_step:
            resumed_meter = Meter(device)
            resumed_meter.load_state(state["meter"])
        log.info("resumed from %s at epoch %d, step %d", last_path, start_epoch + 1, start_step)
    elif resume:
        log.info("no checkpoint in %s yet: starting fresh", run_dir)

    train_model = model
    if tcfg.sync_bn and info.enabled:
        train_model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if tcfg.compile:  # per stage, in place: state_dict keys and feature mixing unchanged
        if hasattr(model, "compile_stages"):
            model.compile_stages()
        else:
            model.compile()
    if info.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            train_model, device_ids=[device.index] if device.type == "cuda" else None)

    record = {
        "status": "running",
        "dataset": data.name,
        "model": cfg.model.get("name"),
        "model_options": _params(cfg.model, skip=("_target_", "name")),
        "regularizer": (choices or {}).get("regularizer", type(regularizer).__name__),
        "regularizer_target": cfg.regularizer._target_,
        "regularizer_params": _params(cfg.regularizer),
        "label_smoothing": cfg.label_smoothing,
        "experiment": (choices or {}).get("experiment"),
        "seed": cfg.seed,
        "epochs": tcfg.epochs,
        "batch_size": tcfg.batch_size,
        "lr": tcfg.lr,
        "num_params": num_params,
        "world_size": info.world_size,
        "device": str(device),
        "amp": str(dtype),
        "channels_last": _flag(tcfg.channels_last, device),
        "compile": bool(tcfg.compile),
        "nondeterminism": nondeterminism,
        "versions": package_versions(),
        "git_revision": git_revision(),
        "machine": machine(),
    }

    def checkpoint(epochs_done: int, step: int = 0, meter: Meter | None = None) -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epochs_done,
                "step": step, "meter": meter.state() if meter else None, "rng": rng_state(device),
                "history": history, "meta": meta}

    writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_epoch + 1) if info.is_main else None
    progress = bool(tcfg.progress) and info.is_main
    log.info("%s | %s (%s parameters) | %s | %d epochs on %s x%d", data.name, cfg.model.get("name"),
             f"{num_params:,}", regularizer, tcfg.epochs, device, info.world_size)
    wall_before = history[-1]["wall_time_s"] if history else 0.0
    started = time.perf_counter()
    stop = StopRequest().install()
    try:
        for epoch in range(start_epoch, tcfg.epochs):
            skip = start_step if epoch == start_epoch else 0
            data.train.set_epoch(epoch, skip)
            if hasattr(regularizer, "set_progress"):  # Table 8's scheduled probability
                regularizer.set_progress(epoch / max(tcfg.epochs - 1, 1))
            lr = optimizer.param_groups[0]["lr"]
            train = train_one_epoch(train_model, data.train, regularizer, optimizer, scaler, cfg, device, epoch,
                                    progress, meter=resumed_meter if skip else None, start_step=skip, stop=stop)
            if train.get("interrupted"):
                if info.is_main:
                    save_checkpoint(last_path, checkpoint(epoch, train["step"], train["meter"]))
                    record.update(status="interrupted", epochs_done=epoch, **summarize(history), history=history)
                    write_json(run_dir / "results.json", record)
                log.info("stopped by %s at epoch %d, step %d; checkpoint written to %s: run again with "
                         "trainer.resume=true to continue", stop.name, epoch + 1, train["step"], last_path)
                distributed.barrier()
                stop.hand_over()
                return record
            distributed.broadcast_buffers(model)  # evaluate what rank 0 saves (BN statistics)
            val = evaluate(model, data.val, cfg, device)
            scheduler.step()
            entry = {"epoch": epoch + 1, "lr": lr, "train_loss": train["loss"], "train_top1_err": train["top1_err"],
                     "val_loss": val["loss"], "val_top1_err": val["top1_err"], "val_top5_err": val["top5_err"],
                     "val_count": val["count"], "images_per_s": train["images_per_s"],
                     "wall_time_s": wall_before + time.perf_counter() - started}
            if info.enabled:  # every rank's view of the same evaluation, to show they agree
                entry["rank_val_top1_err"] = distributed.gather_floats(val["top1_err"])
            history.append(entry)
            if info.is_main:
                _log_epoch(writer, entry)
                summary, state = summarize(history), checkpoint(epoch + 1)
                if summary["best_epoch"] == epoch + 1:
                    save_checkpoint(run_dir / "best.pt", state)
                save_checkpoint(last_path, state)
                done = epoch + 1 == tcfg.epochs
                record.update(status="finished" if done else "running", epochs_done=epoch + 1,
                              wall_time_s=entry["wall_time_s"], **summary, history=history)
                write_json(run_dir / "results.json", record)
            distributed.barrier()
        if info.enabled:
            checksums = distributed.gather_floats(sum(float(p.detach().double().sum()) for p in model.parameters()))
            if info.is_main:
                record["rank_weight_checksums"] = checksums
                write_json(run_dir / "results.json", record)
    except TrainingDiverged as err:
        good = f"{last_path} (after epoch {history[-1]['epoch']})" if history else "none (no epoch finished)"
        message = f"{err}; training stopped, the last good checkpoint is {good}"
        if info.is_main:
            record.update(status="diverged", error=message, **summarize(history), history=history)
            write_json(run_dir / "results.json", record)
        raise TrainingDiverged(message) from None
    finally:
        stop.restore()
        if writer is not None:
            if history and history[-1]["epoch"] == tcfg.epochs:
                _log_hparams(writer, record)
            writer.close()
    return record


def _params(node: DictConfig, skip=("_target_",)) -> dict[str, Any]:
    return {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k not in skip}


def _log_epoch(writer: SummaryWriter, entry: dict) -> None:
    step = entry["epoch"]
    for tag, key in (("train/loss", "train_loss"), ("train/top1_err", "train_top1_err"),
                     ("val/loss", "val_loss"), ("val/top1_err", "val_top1_err"), ("val/top5_err", "val_top5_err"),
                     ("lr", "lr"), ("train/images_per_s", "images_per_s")):
        writer.add_scalar(tag, entry[key], step)
    writer.flush()
    log.info("epoch %d | lr %.4g | train loss %.4f top1_err %.2f | val top1_err %.2f top5_err %.2f | %.0f img/s",
             step, entry["lr"], entry["train_loss"], entry["train_top1_err"], entry["val_top1_err"],
             entry["val_top5_err"], entry["images_per_s"])


def _log_hparams(writer: SummaryWriter, record: dict) -> None:
    """The run's hyperparameters with its errors, for TensorBoard's HParams view."""
    hparams = {"dataset": record["dataset"], "model": record["model"], "regularizer": record["regularizer"],
               "label_smoothing": record["label_smoothing"], "seed": record["seed"], "epochs": record["epochs"],
               "lr": record["lr"], "batch_size": record["batch_size"]}
    for key, value in record["regularizer_params"].items():
        if isinstance(value, int | float | str | bool):
            hparams[f"regularizer.{key}"] = value
    for key, value in record["model_options"].items():
        if isinstance(value, int | float | str | bool):
            hparams[f"model.{key}"] = value
    metrics = {f"hparam/{k}": record[k] for k in ("best_top1_err", "best_top5_err", "last_top1_err", "last_top5_err")}
    writer.add_hparams(hparams, metrics, run_name=".")


def _set_determinism(deterministic: bool, device: torch.device) -> dict[str, Any]:
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return {
        "deterministic_algorithms": deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "note": ("bit-exact given the seed on the CPU; on CUDA, cuDNN autotuning and atomic adds make "
                 "runs differ slightly unless trainer.deterministic=true"),
    }


def json_load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


__all__ = ["RunDirError", "TrainingDiverged", "evaluate", "fit", "train_one_epoch"]
