"""Everything a run writes, from rank 0 only: ``last.pt`` every epoch and ``best.pt`` at the best
epoch (atomically), ``results.json``, TensorBoard scalars and hyperparameters, the log line per epoch.

TensorBoard: one scalar per history field and epoch (``records.TB_TAGS``), and the run's
hyperparameters as a session of the HParams plugin, without an experiment summary of its own: the
plugin then builds the table from all runs of a sweep, puts the keys whose values differ first, and
takes its metric columns from the scalars above (no extra ``hparam/*`` scalars).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from . import records as R
from .checkpoint import save_checkpoint, write_json

log = logging.getLogger("cutmix_repro")


class RunRecorder:
    def __init__(self, run_dir: Path, record: dict[str, Any], hparams: dict[str, Any], is_main: bool,
                 start_epoch: int, fresh: bool):
        self.run_dir, self.record, self.is_main = Path(run_dir), record, is_main
        self.writer = None
        if is_main:  # steps after the checkpoint are purged, so a resumed run logs each epoch once
            self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=start_epoch + 1)
            if fresh:
                _, session_start, _ = hparams_summaries(hparams, {})
                self.writer.file_writer.add_summary(session_start)

    def epoch_done(self, entry: dict[str, Any], history: list[dict[str, Any]], state: dict[str, Any],
                   epochs: int) -> None:
        """After each epoch: the log line, scalars, ``best.pt`` if this epoch is the best, ``last.pt``,
        ``results.json`` (in that order: results never name a checkpoint that is not written)."""
        if not self.is_main:
            return
        step = entry[R.EPOCH]
        for name, tag in R.TB_TAGS.items():
            self.writer.add_scalar(tag, entry[name], step)
        self.writer.flush()
        log.info("epoch %d | lr %.4g | train loss %.4f top1_err %.2f | val top1_err %.2f top5_err %.2f | %.0f img/s",
                 step, entry[R.LR], entry[R.TRAIN_LOSS], entry[R.TRAIN_TOP1], entry[R.VAL_TOP1], entry[R.VAL_TOP5],
                 entry[R.IMAGES_PER_S])
        summary = R.summarize(history)
        if summary[R.BEST_EPOCH] == step:
            save_checkpoint(self.run_dir / "best.pt", state)
        save_checkpoint(self.run_dir / "last.pt", state)
        status = R.FINISHED if step == epochs else R.RUNNING
        self.record.update({R.STATUS: status, R.EPOCHS_DONE: step, R.WALL_TIME: entry[R.WALL_TIME], **summary,
                            "history": history})
        write_json(self.run_dir / "results.json", self.record)

    def stopped(self, status: str, history: list[dict[str, Any]], state: dict[str, Any] | None = None,
                **extra) -> None:
        """A run that ends early: a signal (``state`` is the mid-epoch checkpoint) or divergence."""
        self.record.update({R.STATUS: status, R.EPOCHS_DONE: len(history), **R.summarize(history),
                            "history": history, **extra})
        if not self.is_main:
            return
        if state is not None:
            save_checkpoint(self.run_dir / "last.pt", state)
        write_json(self.run_dir / "results.json", self.record)

    def finished(self, **extra) -> None:
        """Facts known only at the end (e.g. every rank's weight checksum)."""
        self.record.update(extra)
        if self.is_main:
            write_json(self.run_dir / "results.json", self.record)

    def close(self) -> None:
        if self.writer is None:
            return
        if self.record.get(R.STATUS) == R.FINISHED:
            _, _, session_end = hparams_summaries({}, {})
            self.writer.file_writer.add_summary(session_end)
        self.writer.close()
        self.writer = None
