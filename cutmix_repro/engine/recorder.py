"""Everything a run writes, from rank 0 only: ``last.pt`` every epoch and ``best.pt`` at the best
epoch (atomically), ``results.json``, TensorBoard scalars, images and hyperparameters, the log line
per epoch.

TensorBoard images (``trainer.tb_mixed_batch``, ``trainer.tb_cams_every``): the first mixed training
batch of each epoch (``train/mixed_batch``, its λ as the text ``train/mixed_batch_lambda``), and every N
epochs the class activation maps of the true class of a fixed set of test images (``val/cam``).

TensorBoard: one scalar per history field and epoch (``records.TB_TAGS``), and from the run's summary so
far (``records.TB_SUMMARY_TAGS``) the best epoch's errors (``best/val_top1_err``, ``best/val_top5_err``)
and the steady-state images/s; and the run's hyperparameters as a session of the HParams plugin, without
an experiment summary of its own: the plugin then builds the table from all runs of a sweep, puts the keys
whose values differ first, and takes its metric columns from the scalars above in the order of their
names, so ``best/val_top1_err`` comes first (no extra ``hparam/*`` scalars). The hyperparameters include
the config-group choices (``experiment``, ``dataset``, ``model``, ``regularizer``), and the session is
named by them and the run directory (``cutmix · resnet8 · digits · regularizer=cutmix``), so the HParams
table tells the runs apart by what they are.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from ..config import HYDRA_KEYS
from ..visuals import FirstMixedBatch, cam_overlays, fixed_test_images, localization_figure, mixed_batch
from . import checkpoint
from . import records as R

log = logging.getLogger("cutmix_repro")


@dataclass
class Visuals:
    """What TensorBoard shows besides scalars, and what it needs to show it."""

    mixed_batch: bool  # trainer.tb_mixed_batch
    cams_every: int  # trainer.tb_cams_every; 0 = never
    data: Any  # the DataBundle: its normalisation and test images
    cam_images: int = 8

    @property
    def has_boxes(self) -> bool:
        """Test images come with object boxes (localization data)."""
        return len(self.data.val.sample(0)) > 2


def session_start(hparams: dict[str, Any], name: str):
    """The HParams plugin's session-start summary (torch's ``hparams``) with the session named ``name``:
    the HParams table's trial id, instead of the run's path (which starts with a date)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    _, start, _ = hparams_summaries(hparams, {})
    value = start.value[0]
    content = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    content.session_start_info.group_name = name
    value.metadata.plugin_data.content = content.SerializeToString()
    return start


class RunRecorder:
    """``tensorboard``: write TensorBoard's log (``logger=[tensorboard,...]``); ``loggers``: the other loggers of
    ``logger=[...]`` (``engine.loggers``), told after ``results.json`` is written."""

    def __init__(self, run_dir: Path, record: dict[str, Any], hparams: dict[str, Any], is_main: bool,
                 start_epoch: int, fresh: bool, visuals: Visuals | None = None, session_name: str = "",
                 tensorboard: bool = True, loggers: list | tuple = ()):
        self.run_dir, self.record, self.is_main, self.visuals = Path(run_dir), record, is_main, visuals
        self.files = checkpoint  # where checkpoints and results.json are written: at once (a fused group: together)
        self.cam_batch = None
        self.writer = None
        self.loggers = list(loggers) if is_main else []
        for logger in self.loggers:  # first: one that cannot start (a resume in another MLflow store) stops the run
            logger.start(self.run_dir, record, hparams, session_name)
        if is_main and tensorboard:  # steps after the checkpoint are purged, so a resumed run logs each epoch once
            self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=start_epoch + 1)
            if fresh:
                self.writer.file_writer.add_summary(session_start(hparams, session_name))

    def snapshot(self) -> FirstMixedBatch | None:
        """What the training step should keep of its first mixed batch this epoch (None: nothing)."""
        keep = self.writer is not None and self.visuals and self.visuals.mixed_batch
        return FirstMixedBatch() if keep else None

    def log_images(self, epoch: int, snapshot: FirstMixedBatch | None, model: torch.nn.Module,
                   last_epoch: bool) -> float:
        """The epoch's images (see the module's docstring); on data with boxes, after the last epoch, also
        ``localization.png``: the fixed test images with their true boxes (green) and the box of the
        predicted class's CAM (red). Returns the seconds they took."""
        v, step = self.visuals, epoch + 1
        if not self.is_main or v is None:
            return 0.0
        cams_now = bool(v.cams_every) and step % v.cams_every == 0 and self.writer is not None
        boxes_now = last_epoch and v.has_boxes
        if snapshot is None and not cams_now and not boxes_now:
            return 0.0
        start = time.perf_counter()
        if snapshot is not None and snapshot.batch is not None and self.writer is not None:
            images, caption = mixed_batch(snapshot.batch, v.data.mean, v.data.std)
            self.writer.add_images("train/mixed_batch", images, step)
            self.writer.add_text("train/mixed_batch_lambda", caption, step)
        if cams_now or boxes_now:
            if self.cam_batch is None:  # a fixed set: the first test images
                self.cam_batch = fixed_test_images(v.data, v.cam_images)
            if cams_now:
                overlays = cam_overlays(model, *self.cam_batch[:2], v.data.mean, v.data.std, *self.cam_batch[2:])
                self.writer.add_images("val/cam", overlays, step)
            if boxes_now:
                r = self.record
                title = f"{r['regularizer']} · {r['model']} · {r['dataset']} · {self.run_dir.name}, epoch {step}"
                localization_figure(self.run_dir / "localization.png", model, *self.cam_batch, v.data.mean,
                                    v.data.std, v.data.class_name, title)
        return time.perf_counter() - start

    def epoch_done(self, entry: dict[str, Any], history: list[dict[str, Any]], state: dict[str, Any],
                   epochs: int) -> None:
        """After each epoch: the log line, scalars, ``best.pt`` if this epoch is the best, ``last.pt``,
        ``results.json`` (in that order: results never name a checkpoint that is not written)."""
        if not self.is_main:
            return
        step = entry[R.EPOCH]
        summary = R.summarize(history)
        if self.writer is not None:
            for name, tag in R.TB_TAGS.items():
                if name in entry:
                    self.writer.add_scalar(tag, entry[name], step)
            for name, tag in R.TB_SUMMARY_TAGS.items():
                if summary.get(name) is not None:
                    self.writer.add_scalar(tag, summary[name], step)
            self.writer.flush()
        located = (f" | top1_loc {entry[R.VAL_TOP1_LOC]:.2f} gt_known_loc {entry[R.VAL_GT_KNOWN_LOC]:.2f} "
                   f"max_box_acc {entry[R.VAL_MAX_BOX_ACC]:.2f} v2 {entry[R.VAL_MAX_BOX_ACC_V2]:.2f}"
                   if R.VAL_TOP1_LOC in entry else "")
        located += f" | ema top1_err {entry[R.VAL_TOP1_EMA]:.2f}" if R.VAL_TOP1_EMA in entry else ""
        log.info("epoch %d | lr %.4g | train loss %.4f top1_err %.2f | val top1_err %.2f top5_err %.2f%s | %.0f img/s",
                 step, entry[R.LR], entry[R.TRAIN_LOSS], entry[R.TRAIN_TOP1], entry[R.VAL_TOP1], entry[R.VAL_TOP5],
                 located, entry[R.IMAGES_PER_S])
        if summary[R.BEST_EPOCH] == step:
            self.files.save_checkpoint(self.run_dir / "best.pt", state)
        self.files.save_checkpoint(self.run_dir / "last.pt", state)
        status = R.FINISHED if step == epochs else R.RUNNING
        self.record.update({R.STATUS: status, R.EPOCHS_DONE: step, R.WALL_TIME: entry[R.WALL_TIME], **summary,
                            "history": history})
        self.files.write_json(self.run_dir / "results.json", self.record)
        for logger in self.loggers:
            logger.log(history)

    def stopped(self, status: str, history: list[dict[str, Any]], state: dict[str, Any] | None = None,
                **extra) -> None:
        """A run that ends early: a signal (``state`` is the mid-epoch checkpoint) or divergence."""
        self.record.update({R.STATUS: status, R.EPOCHS_DONE: len(history), **R.summarize(history),
                            "history": history, **extra})
        if not self.is_main:
            return
        if state is not None:
            self.files.save_checkpoint(self.run_dir / "last.pt", state)
        self.files.write_json(self.run_dir / "results.json", self.record)
        for logger in self.loggers:
            logger.log(history)

    def finished(self, **extra) -> None:
        """Facts known only at the end (e.g. every rank's weight checksum)."""
        self.record.update(extra)
        if self.is_main:
            self.files.write_json(self.run_dir / "results.json", self.record)

    def close(self) -> None:
        for logger in self.loggers:
            logger.finish(self.record)
        self.loggers = []
        if self.writer is None:
            return
        if self.record.get(R.STATUS) == R.FINISHED:
            _, _, session_end = hparams_summaries({}, {})
            self.writer.file_writer.add_summary(session_end)
        self.writer.close()
        self.writer = None


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
