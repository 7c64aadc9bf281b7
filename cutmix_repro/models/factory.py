"""``create_model(name, num_classes, **options)``: a model by the name of its config, like
``timm.create_model``.

A name is a file of ``configs/model/``: the general families ``cifar_resnet``, ``pyramidnet`` and
``timm_resnet`` (their shape is yours to give) and the paper's presets built on them (``list_models()``).
Each preset is defined there and only there, and ``python -m cutmix_repro.train model=NAME`` builds
exactly what ``create_model(NAME)`` builds.
"""

from __future__ import annotations

import functools

from omegaconf import DictConfig, OmegaConf
from torch import nn

from ..config import build, config_dir, options
from ..errors import ConfigError


def list_models() -> list[str]:
    return options("model")


@functools.cache
def _load(name: str) -> DictConfig:
    node = OmegaConf.load(config_dir() / "model" / f"{name}.yaml")
    defaults = list(node.pop("defaults", None) or [])
    if "_self_" not in defaults:  # Hydra 1.1+: _self_ comes last unless placed
        defaults.append("_self_")
    merged = OmegaConf.create()
    for entry in defaults:
        merged = OmegaConf.merge(merged, node if entry == "_self_" else _load(entry))
    return merged


def model_config(name: str) -> DictConfig:
    """The resolved ``configs/model/NAME.yaml`` (its ``defaults`` merged in, as Hydra composes it)."""
    if name not in list_models():
        raise ConfigError("model", name, f"unknown model: choose one of {', '.join(list_models())}")
    return _load(name).copy()


def create_model(name: str, num_classes: int, **options) -> nn.Module:
    """Build the model ``configs/model/NAME.yaml`` describes, with ``options`` overriding its keys."""
    cfg = OmegaConf.merge(model_config(name), options)
    return build(cfg, "model", num_classes=num_classes)


def model_inputs(num_classes: int, in_chans: int = 3) -> dict[str, int]:
    """What a model takes from its data set: the classes, and the channels where they are not RGB's 3
    (every model here has ``in_chans``, default 3)."""
    return {"num_classes": num_classes, **({"in_chans": in_chans} if in_chans != 3 else {})}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def arch_name(model_cfg: DictConfig) -> str:
    """The name by real shape (``pyramidnet`` and its depth, say) of the model a config describes, built on the
    ``meta`` device: no memory, no initialisation."""
    import torch

    if "init_from" in model_cfg:  # the shape only: no starting weights
        model_cfg = OmegaConf.merge(model_cfg, {"init_from": None})
    with torch.device("meta"):
        return build(model_cfg, "model", num_classes=1).arch_name
