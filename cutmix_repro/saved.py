"""A trained run read back: its resolved config (kept in every checkpoint; ``.hydra/config.yaml`` for
older ones), its model with the weights of ``best.pt`` (or any checkpoint), and its data set, for the
commands that look at a trained model (``cutmix_repro.figure1``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from .config import build
from .data import DataBundle
from .engine.checkpoint import load_checkpoint
from .errors import ConfigError
from .models import model_inputs


@dataclass
class SavedRun:
    run_dir: Path
    checkpoint: Path
    cfg: DictConfig
    model: nn.Module  # on the CPU, in evaluation mode

    def data(self, batch_size: int = 64, device: str | torch.device = "cpu") -> DataBundle:
        """The run's data set, built as the run built it (``dataset.root`` relative to the current folder)."""
        return build(self.cfg.dataset, "dataset", batch_size=batch_size, device=device, seed=int(self.cfg.seed))


WEIGHTS = ("model", "ema")


def load_run(path: str | Path, checkpoint: str = "best.pt", weights: str = "model") -> SavedRun:
    """A run directory (its ``checkpoint``, ``best.pt`` by default) or a checkpoint file of ours; ``weights``:
    the trained model's (``model``) or their moving average's (``ema``, runs with ``trainer.ema_decay``)."""
    if weights not in WEIGHTS:
        raise ConfigError("--weights", weights, "model (the trained weights) or ema (their moving average)")
    path = Path(path)
    if not path.exists():
        raise ConfigError("run", str(path), "no such folder or file: give a run directory of "
                          "python -m cutmix_repro.train, or a checkpoint of ours")
    run_dir, ckpt = (path.parent, path) if path.is_file() else (path, path / checkpoint)
    if not ckpt.is_file():
        raise ConfigError("run", str(path), f"no checkpoint {ckpt.name} there: give a run directory of "
                          "python -m cutmix_repro.train, or a checkpoint of ours")
    state = load_checkpoint(ckpt, {})
    config = run_dir / ".hydra" / "config.yaml"
    if "config" in state:
        cfg = OmegaConf.create(state["config"])
    elif config.is_file():
        cfg = OmegaConf.load(config)
    else:
        raise ConfigError("run", str(path), "the checkpoint holds no config, nor is there a .hydra/config.yaml")
    meta = state["meta"]
    model = build(cfg.model, "model", **model_inputs(meta["num_classes"], meta.get("in_chans", 3)))
    if weights == "ema" and not state.get("ema"):
        raise ConfigError("--weights", weights, f"{ckpt} holds no weight EMA (trained without trainer.ema_decay): "
                          "use --weights model")
    model.load_state_dict(state["ema"]["weights"] if weights == "ema" else state["model"])
    return SavedRun(run_dir, ckpt, cfg, model.eval())
