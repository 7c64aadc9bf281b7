"""The optimizer: SGD over every parameter (the paper's recipes), and for localization fine-tuning
(appendix B) a separate learning rate for the classifier, which starts from scratch while the rest
starts from pretrained weights.

On CUDA the update is PyTorch's fused SGD kernel (one launch for all parameters, the same arithmetic);
elsewhere its default (foreach) implementation, which matches the official code's step bit for bit on
the CPU."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError


def sgd(model: nn.Module, lr: float, momentum: float, nesterov: bool, weight_decay: float,
        classifier_lr: float | None) -> torch.optim.SGD:
    """``torch.optim.SGD``; with ``classifier_lr`` two parameter groups: the rest at ``lr`` (group 0, the lr
    the trainer logs) and the classifier (``model.head_parts()[1]``) at ``classifier_lr``."""
    if classifier_lr is None:
        groups = [{"params": list(model.parameters())}]
    else:
        if not classifier_lr > 0:
            raise ConfigError("classifier_lr", classifier_lr, "a learning rate > 0, or null for one lr")
        head = {id(p) for p in model.head_parts()[1].parameters()}
        groups = [{"params": [p for p in model.parameters() if id(p) not in head]},
                  {"params": [p for p in model.parameters() if id(p) in head], "lr": classifier_lr}]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                           fused=use_fused(model.parameters()) or None)


def use_fused(params) -> bool:
    """The fused kernel where every parameter is a floating-point tensor on a CUDA device."""
    params = list(params)
    return bool(params) and all(p.is_cuda and p.is_floating_point() for p in params)
