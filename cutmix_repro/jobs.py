"""What a command does when a job cannot go on (``cutmix_repro.train``, ``cutmix_repro.transfer`` and the fused
launcher, ``hydra_plugins/cutmix_repro_fused``): one error line and exit status 2, the line kept in the job's log,
and a start that wrote nothing to keep leaves no folder behind."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

log = logging.getLogger("cutmix_repro")


def fail(message: str) -> None:
    """One line on stderr (from rank 0 only under torchrun) and exit status 2."""
    from .engine import distributed

    if distributed.rank() == 0:
        print(message if message.startswith("error:") else f"error: {message}", file=sys.stderr, flush=True)
    distributed.settle()  # under torchrun: no rank exits (which ends the others) before rank 0 has said it
    sys.exit(2)


def log_to_file(message: str) -> None:
    """The error into ``train.log`` only: the console gets it once, from ``fail``."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s", (message,), None)
    for handler in logging.getLogger().handlers + log.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def remove_failed_start(run_dir: Path, log_name: str = "train.log") -> None:
    """A run that stopped before it wrote anything to keep (no ``results.json``, no checkpoint) leaves no
    folder: what this start wrote (``.hydra/``, ``train.log``, ``tb/``) goes, then the folder if it is
    empty. A folder with anything else in it stays as it was."""
    if any((run_dir / name).exists() for name in ("results.json", "last.pt", "best.pt")):
        return
    for logger in (logging.getLogger(), log):
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == run_dir.resolve():
                logger.removeHandler(handler)  # the log file goes with the folder
                handler.close()
    shutil.rmtree(run_dir / ".hydra", ignore_errors=True)
    shutil.rmtree(run_dir / "tb", ignore_errors=True)
    (run_dir / log_name).unlink(missing_ok=True)
    remove_empty_folders(run_dir)


def remove_empty_folders(folder: Path) -> None:
    """``folder``, then each folder above it inside the working directory (``runs/cifar100/pyramidnet200/cutmix``
    of a default run directory), while empty: a failed start leaves no trace. A folder with anything in it stays,
    and nothing at or above the working directory is touched."""
    folder, top = folder.resolve(), Path.cwd().resolve()
    for path in (folder, *folder.parents):
        if path != folder and (path == top or top not in path.parents):
            break
        try:
            path.rmdir()
        except OSError:
            break  # not empty: files that are not ours
