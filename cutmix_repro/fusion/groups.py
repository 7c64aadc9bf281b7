"""Which runs of a multirun can train as one fused model (``fusion/loop.py``): the same config but for what a
member may have of its own (``MEMBER_KEYS``: seed, regularizer and its parameters, label smoothing, …), and none
of what fusion cannot hold (``why_alone``)."""

from __future__ import annotations

import json

import torch
from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError
from .model import FUSABLE_MODELS

# what the members of a group may differ in: the rest of the config must be the same
MEMBER_KEYS = ("seed", "regularizer", "label_smoothing", "cutmix_prob", "cutout_size", "logger", "fuse",
               "trainer.resume", "trainer.overwrite", "trainer.progress")


def shared_setting(cfg: DictConfig) -> str:
    """What the members of a fused group must have in common, as text (the config less ``MEMBER_KEYS``)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    for key in MEMBER_KEYS:
        node, _, last = key.rpartition(".")
        parent = container
        for part in filter(None, node.split(".")):
            parent = parent.get(part, {})
        parent.pop(last, None)
    container.pop("hydra", None)
    return json.dumps(container, sort_keys=True, default=str)


def why_alone(cfg: DictConfig) -> str | None:
    """Why the run ``cfg`` cannot share a fused step with others, or None."""
    from ..config import build

    with torch.device("meta"):  # the model's class only
        model = build(cfg.model, "model", num_classes=10)
    if not isinstance(model, FUSABLE_MODELS):
        return f"its model {type(model).__name__} is not a CIFAR ResNet, PyramidNet or PreAct-ResNet (the models fused)"
    if getattr(build(cfg.regularizer, "regularizer"), "mixes_features", False):
        return "feature-level mixing mixes inside the network, where the members share their layers"
    if cfg.dataset.get("pipeline", "tensor") not in ("tensor", None):
        return "its data come through a DataLoader, not the GPU-resident loader the members share a step with"
    t = cfg.trainer
    switches = {"trainer.accumulate": t.get("accumulate", 1) != 1, "trainer.ema_decay": t.get("ema_decay") is not None,
                "trainer.clip_grad_norm": t.get("clip_grad_norm") is not None, "trainer.compile": bool(t.compile),
                "trainer.amp=fp16": t.amp == "fp16"}
    on = [name for name, value in switches.items() if value]
    if on:
        return f"{', '.join(on)} is not fused (each member would need its own)"
    return None


def check_max_members(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError("fuse.max_members", value, "a whole number >= 1 of runs to train as one model")
    return value


def fusion_groups(cfgs: list[DictConfig], max_members: int) -> tuple[list[list[int]], dict[int, str]]:
    """The jobs (indices) that train together, in groups of at most ``max_members`` in the order given, and
    {job: why it runs alone} for those that cannot be fused (a group of one has no reason: nothing to share)."""
    check_max_members(max_members)
    alone, by_setting = {}, {}
    for i, cfg in enumerate(cfgs):
        reason = why_alone(cfg)
        if reason:
            alone[i] = reason
        else:
            by_setting.setdefault(shared_setting(cfg), []).append(i)
    groups = [[i] for i in alone]
    for members in by_setting.values():
        groups += [members[j:j + max_members] for j in range(0, len(members), max_members)]
    return sorted(groups), alone
