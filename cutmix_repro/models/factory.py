"""``create_model(name, num_classes, **options)``: the paper's architectures by name, like
``timm.create_model``.

Presets (REFERENCE.md §4): ``resnet110`` (CIFAR, bottleneck), ``pyramidnet110`` (α̃=64,
bottleneck), ``pyramidnet200`` (α̃=240, bottleneck), ``resnet50``, ``resnet101``,
``resnext101_32x4d``. General families: ``cifar_resnet`` and ``pyramidnet`` take ``depth``,
``bottleneck`` and (PyramidNet) ``alpha``.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from .cifar_resnet import CifarResNet
from .pyramidnet import PyramidNet
from .timm_resnet import TimmResNet

_MODELS = {
    "cifar_resnet": CifarResNet,
    "pyramidnet": PyramidNet,
    "resnet110": partial(CifarResNet, depth=110, bottleneck=True),
    "pyramidnet110": partial(PyramidNet, depth=110, alpha=64, bottleneck=True),
    "pyramidnet200": partial(PyramidNet, depth=200, alpha=240, bottleneck=True),
    "resnet50": partial(TimmResNet, "resnet50"),
    "resnet101": partial(TimmResNet, "resnet101"),
    "resnext101_32x4d": partial(TimmResNet, "resnext101_32x4d"),
}

# The timm models (ImageNet, 224×224 crops); the others are the CIFAR designs written here.
IMAGENET_MODELS = ("resnet50", "resnet101", "resnext101_32x4d")


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, num_classes: int, **options) -> nn.Module:
    """Build a model by name. Unknown names and options fail with the valid choices."""
    if name not in _MODELS:
        raise ValueError(f"model {name!r} is unknown: choose one of {', '.join(list_models())}")
    if not name.startswith("pyramidnet"):
        options = dict(options)
        if options.pop("shakedrop", False):
            raise ValueError(f"shakedrop=True is only defined for PyramidNet models, not {name!r}")
        options.pop("shakedrop_last", None)
    if name in IMAGENET_MODELS:
        options.pop("dropblock_size", None)  # timm picks DropBlock's block sizes per stage
    try:
        return _MODELS[name](num_classes=num_classes, **options)
    except TypeError as err:  # an option this model does not take
        raise ValueError(f"model {name!r}: {err}") from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
