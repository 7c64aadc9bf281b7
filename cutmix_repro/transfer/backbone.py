"""The ImageNet ResNet-50 a transfer run starts from (Table 10: the Table 3 ResNet-50s), as a state dict in
torchvision's key names (``conv1.weight``, ``layer1.0.bn1.running_mean``, …; the classifier ``fc`` left out).

``init_from`` is one of:
- a run directory of ours (its ``best.pt``, the checkpoint Table 3 reports) or a checkpoint file of ours;
- ``torchvision``: torchvision's ImageNet ResNet-50 weights, when the file is already on this machine;
- the authors' released ImageNet checkpoint (clovaai/CutMix-PyTorch: ``state_dict`` under ``module.``);
- any file holding a plain torchvision-named ResNet-50 state dict.
Anything that is not a ResNet-50 is one error line naming what it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ConfigError


@dataclass
class Backbone:
    state: dict[str, torch.Tensor]  # torchvision key names, no fc
    source: str                     # what it is, in words
    regularizer: str | None = None  # the training run's regularizer (baseline, mixup, cutout, cutmix, …)
    imagenet_top1_err: float | None = None
    details: dict = field(default_factory=dict)


def resnet50_shapes() -> dict[str, tuple[int, ...]]:
    """torchvision's ResNet-50 keys (without ``fc``) and shapes, built on the meta device."""
    from torchvision.models import resnet50

    with torch.device("meta"):
        model = resnet50()
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith("fc.")}


def check_resnet50(state: dict[str, torch.Tensor], init_from: str, what: str) -> dict[str, torch.Tensor]:
    """``state`` without its classifier, if it is a ResNet-50's; else one error naming what it looks like."""
    shapes = resnet50_shapes()
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    extra = [k for k in state if k not in shapes]
    if extra or any(tuple(state[k].shape) != s for k, s in shapes.items() if k in state):
        bad = extra[0] if extra else next(k for k, s in shapes.items() if k in state and tuple(state[k].shape) != s)
        raise ConfigError("init_from", init_from, f"{what} is not a ResNet-50 (its weight {bad} "
                          f"{tuple(state[bad].shape)} has no place in one): Table 10 transfers ImageNet ResNet-50s")
    missing = [k for k in shapes if k not in state]
    if missing:
        raise ConfigError("init_from", init_from, f"{what} has no weight {missing[0]}: not a whole ResNet-50")
    return state


def _ours(path: Path, init_from: str) -> Backbone:
    from omegaconf import OmegaConf

    from ..engine.checkpoint import CheckpointError, load_checkpoint
    from ..models.factory import arch_name

    try:
        saved = load_checkpoint(path, {})
    except CheckpointError as err:
        raise ConfigError("init_from", init_from, str(err)) from None
    cfg = OmegaConf.create(saved["config"]) if "config" in saved else None
    if cfg is not None and "task" in cfg:
        raise ConfigError("init_from", init_from, f"a transfer run ({cfg.task.name}), not an ImageNet training run")
    arch = arch_name(cfg.model) if cfg is not None and "model" in cfg else "unknown"
    if arch != "resnet50":
        raise ConfigError("init_from", init_from, f"a checkpoint of {arch}, not a ResNet-50: Table 10 transfers "
                          "ImageNet ResNet-50s (e.g. a run of +experiment=imagenet_resnet50)")
    state = {k.removeprefix("net."): v for k, v in saved["model"].items()}
    state = check_resnet50(state, init_from, "the checkpoint")
    regularizer = error = None
    results = path.parent / "results.json"
    details = {"dataset": saved["meta"].get("dataset"), "epoch": saved.get("epoch")}
    if results.is_file():
        from ..engine.records import BEST_TOP1
        from ..paper import run_key

        record = json.loads(results.read_text())
        regularizer, error = record.get("regularizer"), record.get(BEST_TOP1)
        if "dataset" in record:  # the training setting, so the report can put the backbone in its Table 3 row
            details["run_key"] = run_key(record)
    return Backbone(state, f"our run {path}", regularizer, error, details)


def load_backbone(init_from: str) -> Backbone:
    """The ResNet-50 ``init_from`` names (module docstring)."""
    if init_from in (None, "", "none"):
        raise ConfigError("init_from", init_from, "give the ImageNet ResNet-50 to start from: a run directory or "
                          "checkpoint of ours, torchvision, or the authors' released checkpoint")
    if init_from == "torchvision":
        from ..models.pretrained import torchvision_file

        path, url = torchvision_file("resnet50")
        if not path.is_file():
            raise ConfigError("init_from", init_from, f"torchvision's ImageNet ResNet-50 weights are not on this "
                              f"machine (expected {path}, from {url})")
        state = torch.load(path, map_location="cpu", weights_only=True)
        return Backbone(check_resnet50(state, init_from, "torchvision's file"), "torchvision IMAGENET1K_V1",
                        "torchvision", 23.87)  # torchvision's documented acc@1 76.130
    path = Path(init_from)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return _ours(path / name, init_from)
        raise ConfigError("init_from", init_from, "a folder without best.pt or last.pt: give a training run directory")
    if not path.is_file():
        raise ConfigError("init_from", init_from, "no such folder or file: give a run directory or checkpoint of ours, "
                          "torchvision, or the authors' released checkpoint")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        from ..evaluation.official import read

        raw = read(path)  # the authors' files may hold numpy scalars; read() allows exactly those
    if isinstance(raw, dict) and "model" in raw and "meta" in raw:
        return _ours(path, init_from)
    if isinstance(raw, dict) and "state_dict" in raw:  # the authors' release
        state = {k.removeprefix("module."): v for k, v in raw["state_dict"].items()}
        what = f"the authors' checkpoint (arch {raw.get('arch', '?')})"
        error = raw.get("best_err1")
        return Backbone(check_resnet50(state, init_from, what), f"authors' {path.name}", None,
                        float(error) if error is not None else None)
    if isinstance(raw, dict) and all(isinstance(v, torch.Tensor) for v in raw.values()):
        return Backbone(check_resnet50(raw, init_from, "the file's state dict"), f"state dict {path.name}")
    raise ConfigError("init_from", init_from, "not a checkpoint of ours, the authors', or a ResNet-50 state dict")
