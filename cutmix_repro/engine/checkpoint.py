"""Checkpoints written atomically (temporary file, fsync, rename) and read with
``torch.load(weights_only=True)``; they carry what a resume needs to continue bit-exactly."""

from __future__ import annotations

import json
import os
import random
import tempfile
import uuid
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    pass


def atomic_write(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(state, f))


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=2, sort_keys=False).encode()))


COMMIT_JOURNAL = ".fused-commit.json"
STAGED = ".next"


class GroupCommit:
    """Files of several runs replaced together (a fused group's checkpoints and ``results.json`` at the end of an
    epoch, ``fusion/loop.py``). One commit: each file is written beside its place as ``NAME.<commit id>.next``;
    then a journal (the commit's id, every run directory of the group, the renames) goes into every run directory;
    then the renames; then the journal leaves every run directory, whether or not it had a file of its own in the
    commit. The commit is decided when the last journal is written (``recover_group_commit``): a kill before that
    leaves every run's old files, a kill after it is finished at the next start, in whichever member's directory
    that start comes first (a member resumed alone too). A journal renames only its own commit's files (their
    names carry its id), so a journal that outlived its commit can never move a later commit's files. So the
    members of a group never disagree on where they are."""

    def __init__(self, run_dirs):
        self.run_dirs = [Path(d) for d in run_dirs]
        self.pending: list[tuple[Path, Path]] = []
        self.commit_id = uuid.uuid4().hex[:12]

    def _staged(self, path: Path) -> Path:
        path = Path(path)
        staged = path.with_name(f"{path.name}.{self.commit_id}{STAGED}")
        self.pending.append((staged, path))
        return staged

    def save_checkpoint(self, path: Path, state: dict[str, Any]) -> None:
        save_checkpoint(self._staged(path), state)

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        write_json(self._staged(path), data)

    def commit(self) -> None:
        if self.pending:
            journal = {"commit": self.commit_id, "folders": [str(d) for d in self.run_dirs],
                       "renames": [[str(a), str(b)] for a, b in self.pending]}
            for folder in self.run_dirs:
                write_json(folder / COMMIT_JOURNAL, journal)
            _finish(journal, decided=True)
        self.pending, self.commit_id = [], uuid.uuid4().hex[:12]


def _journal_id(folder: Path) -> str | None:
    try:
        return json.loads((Path(folder) / COMMIT_JOURNAL).read_text()).get("commit")
    except (OSError, ValueError, AttributeError):
        return None


def _finish(journal: dict[str, Any], decided: bool) -> None:
    """Rename the commit's staged files (``decided``) or remove them (a commit whose journals were not all
    written), then remove its journal from every run directory of the group (another commit's is left)."""
    for staged, final in journal["renames"]:
        if Path(staged).exists():
            if decided:
                os.replace(staged, final)
            else:
                Path(staged).unlink()
    for folder in map(Path, journal["folders"]):
        if _journal_id(folder) == journal["commit"]:
            (folder / COMMIT_JOURNAL).unlink(missing_ok=True)


def recover_group_commit(run_dir: Path) -> None:
    """After a kill: a commit whose journal every run directory of the group holds is finished (its renames,
    in every member's directory); one whose journals were not all written is undone (its staged files removed:
    the old files stand); then this run's staged files of commits that never wrote a journal here go. A run that
    was never fused has neither. (A journal goes from a directory only after all the renames, so a directory
    without the journal still holding the commit's staged files means the journals were never all written.)"""
    run_dir = Path(run_dir)
    journal_path = run_dir / COMMIT_JOURNAL
    if journal_path.exists():
        try:
            journal = json.loads(journal_path.read_text())
            commit = journal["commit"]
            decided = all(_journal_id(folder) == commit for folder in journal["folders"])
            _finish(journal, decided)
        except (OSError, ValueError, KeyError, TypeError):
            journal_path.unlink(missing_ok=True)
    for staged in run_dir.glob("*" + STAGED):
        staged.unlink(missing_ok=True)


def rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def remove_stale_temporaries(folder: Path) -> None:
    """Temporary files a killed process left mid-write; the real files were never touched."""
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, list | tuple) else x


def load_checkpoint(path: Path, expected_meta: dict[str, Any]) -> dict[str, Any]:
    """Load ``path``; a corrupted file or one from another model/data set is an error."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupted or unreadable ({type(err).__name__})") from None
    if not isinstance(state, dict) or "model" not in state or "meta" not in state:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a cutmix-repro training checkpoint")
    for key, expected in expected_meta.items():
        found = state["meta"].get(key)
        if found != expected:
            raise CheckpointError(
                f"checkpoint {str(path)!r} is from another run: {key}={found!r}, this run has {key}={expected!r}"
            )
    return state
