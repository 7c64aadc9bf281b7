"""The ImageNet ResNet-50 a transfer run starts from (Table 10: the Table 3 ResNet-50s), as a state dict in
torchvision's key names (``conv1.weight``, ``layer1.0.bn1.running_mean``, …; the classifier ``fc`` left out).

``init_from`` is one of:
- a run directory of ours (its ``best.pt``, the checkpoint Table 3 reports) or a checkpoint file of ours;
- ``torchvision``: torchvision's ImageNet ResNet-50 weights, when the file is already on this machine;
- the authors' released ImageNet checkpoint (clovaai/CutMix-PyTorch: ``state_dict`` under ``module.``);
- any file holding a plain torchvision-named ResNet-50 state dict (``module.`` prefix or not), or a
  ``.safetensors`` file;
with or without BatchNorm's ``num_batches_tracked`` (older files have none): ``models.pretrained`` reads them all.
Anything that is not a ResNet-50 is one error line naming what it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

from ..errors import ConfigError
from ..models.pretrained import StartingWeights


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
    """``state`` without its classifier, if it is a ResNet-50's (``num_batches_tracked`` or not); else one error
    naming the first weight that is missing, misshapen or has no place in one."""
    from ..models.pretrained import weight_problem

    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    problem = weight_problem(resnet50_shapes(), state)
    if problem is None:
        return state
    if problem.kind == "missing":
        raise ConfigError("init_from", init_from, f"{what} has no weight {problem.key}: not a whole ResNet-50")
    raise ConfigError("init_from", init_from, f"{what} is not a ResNet-50 ({problem.text.replace('this model', 'one')})"
                      ": Table 10 transfers ImageNet ResNet-50s")


def _ours(weights: StartingWeights, init_from: str) -> Backbone:
    from omegaconf import OmegaConf

    from ..models.factory import arch_name

    saved, path = weights.saved, weights.path
    cfg = OmegaConf.create(saved["config"]) if "config" in saved else None
    if cfg is not None and "task" in cfg:
        raise ConfigError("init_from", init_from, f"a transfer run ({cfg.task.name}), not an ImageNet training run")
    arch = arch_name(cfg.model) if cfg is not None and "model" in cfg else saved["meta"].get("model", "unknown")
    if arch != "resnet50":
        raise ConfigError("init_from", init_from, f"a checkpoint of {arch}, not a ResNet-50: Table 10 transfers "
                          "ImageNet ResNet-50s (e.g. a run of +experiment=imagenet_resnet50)")
    state = check_resnet50(weights.state, init_from, "the checkpoint")
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
    """The ResNet-50 ``init_from`` names (module docstring), read by ``models.pretrained``, the reader of every
    ``init_from``."""
    from ..models.pretrained import read_starting_weights

    weights = read_starting_weights(init_from, "resnet50")
    if weights.form == "ours":
        return _ours(weights, init_from)
    what = {"torchvision": "torchvision's file", "authors": f"the authors' checkpoint ({weights.source})",
            "state_dict": "the file's state dict"}[weights.form]
    regularizer = "torchvision" if weights.form == "torchvision" else None
    source = "torchvision IMAGENET1K_V1" if weights.form == "torchvision" else weights.source
    return Backbone(check_resnet50(weights.state, init_from, what), source, regularizer, weights.top1_err)
