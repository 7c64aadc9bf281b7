"""One pass of training or evaluation, the step the paper's every experiment shares: the batch mixed by the
regularizer (or, for feature-level mixing, told where to mix), the model, the mixed loss, the optimizer step;
``trainer.accumulate`` cuts it into chunks; the metrics stay on the device until the epoch ends.
``engine/trainer.py`` runs these passes epoch after epoch; ``StepOptions`` carries what they need (precision,
memory format, label smoothing, …), resolved once from the config, so tests and benchmarks call them directly.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from tqdm import tqdm

from ..errors import ConfigError
from ..localization import LocalizationMeter
from ..regularizers import MixedBatch, mixed_binary_cross_entropy, mixed_cross_entropy
from ..visuals import FirstMixedBatch
from . import distributed
from . import records as R
from .compiled import CUDAGRAPH_MODES
from .ema import WeightEMA
from .metrics import Meter
from .signals import StopRequest


class TrainingDiverged(RuntimeError):
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
                    snapshot: FirstMixedBatch | None = None, ema: WeightEMA | None = None,
                    captured=None) -> dict:
    """One pass over the training shard; metrics stay on the device until the epoch ends.

    Returns the epoch's metrics, or ``{"interrupted": True, "step": k, "meter": ...}`` when a
    stop was requested (checked after every step; under DDP every few steps, where all ranks
    agree). ``start_step``/``meter`` continue an epoch from a checkpoint. ``snapshot`` is offered
    each batch (after the forward pass, when a feature-level λ is known) until one is mixed. ``ema``, if given,
    moves towards the new weights after every step. ``captured`` (``trainer.capture``: ``engine/captured.py``)
    runs each full batch's whole step as one CUDA graph."""
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
        if captured is not None and captured.takes(images, targets):  # mixing … optimizer step: one graph
            (batch, logits), loss = captured(images, targets)
            meter.update(logits, batch.targets_a, loss)
            if snapshot is not None and not snapshot.done:
                snapshot.offer(detached_copy(batch))  # the graph's outputs: the next replay overwrites them
        else:
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
    return {**meter.compute(), **(located.compute(reduce=distributed.all_reduce_sum) if located else {})}



def detached_copy(batch: MixedBatch) -> MixedBatch:
    """A batch of the graph's static outputs as it is now (the next replay overwrites them)."""
    def copy(value):
        return value.detach().clone() if isinstance(value, torch.Tensor) else value

    return MixedBatch(copy(batch.inputs), copy(batch.targets_a), copy(batch.targets_b), copy(batch.lam),
                      batch.mix_layer)
