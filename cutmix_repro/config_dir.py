"""Where the Hydra configs live: ``configs/`` of a source checkout, or the copy that ships
inside the installed package (``cutmix_repro/configs``)."""

from __future__ import annotations

from pathlib import Path

GROUPS = ("dataset", "model", "regularizer", "optimizer", "scheduler", "trainer", "experiment")


def config_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "configs", here / "configs"):
        if (candidate / "train.yaml").exists():
            return candidate
    raise FileNotFoundError("cutmix_repro: no configs/ directory found beside the package")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))
