"""Checkpoints written atomically (temporary file, fsync, rename) and read with
``torch.load(weights_only=True)``; they carry what a resume needs to continue bit-exactly."""

from __future__ import annotations

import json
import os
import random
import tempfile
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
