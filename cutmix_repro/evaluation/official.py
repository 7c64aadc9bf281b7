"""The authors' released checkpoints (clovaai/CutMix-PyTorch): a ``torch.save`` of a dict with ``epoch``,
``arch``, ``state_dict``, ``best_err1``, ``best_err5`` and ``optimizer``, the model wrapped in
``nn.DataParallel`` so every key starts with ``module.``. Their PyramidNet and CIFAR ResNet name their
layers ``conv1``, ``bn1``, ``layerN.i.{bn1, conv1, …}``, ``bn_final``, ``fc``; their ImageNet ResNets use
torchvision's names. The names are mapped onto ours explicitly, the weights loaded strictly, and the
first key that does not fit is named (a file of another model, or of a layout we do not know).
"""

from __future__ import annotations

import re
from pathlib import Path

from torch import nn

from ..errors import ConfigError
from ..models import CifarResNet, PyramidNet, TimmResNet, create_model
from ..models.pretrained import read_with_numpy_scalars as read

# the branch layers of our blocks (models/pyramidnet.py, models/cifar_resnet.py) by the authors' names
PYRAMID_BOTTLENECK = {"bn1": 0, "conv1": 1, "bn2": 2, "conv2": 4, "bn3": 5, "conv3": 7, "bn4": 8}
PYRAMID_BASIC = {"bn1": 0, "conv1": 1, "bn2": 2, "conv2": 4, "bn3": 5}
RESNET_BRANCH = {"conv1": 0, "bn1": 1, "conv2": 3, "bn2": 4, "conv3": 6, "bn3": 7}
BLOCK_KEY = re.compile(r"^layer(\d+)\.(\d+)\.(\w+)\.(\w+)$")
SUB_KEY = re.compile(r"^layer(\d+)\.(\d+)\.downsample\.(\d)\.(\w+)$")


def our_key(model: nn.Module, key: str) -> str | None:
    """Our name for the authors' parameter or buffer ``key`` (without ``module.``), None if it has none."""
    if isinstance(model, TimmResNet):
        return f"net.{key}"
    pyramid = isinstance(model, PyramidNet)
    top = {"conv1": "stem.0", "bn1": "stem.1", "bn_final": "head.0", "fc": "head.4" if pyramid else "head.2"}
    name, _, leaf = key.rpartition(".")
    if name in top:
        return f"{top[name]}.{leaf}"
    if (m := SUB_KEY.match(key)) and not pyramid:  # projection shortcut of the CIFAR ResNet
        return f"stages.{int(m[1]) - 1}.{m[2]}.shortcut.{m[3]}.{m[4]}"
    if m := BLOCK_KEY.match(key):
        bottleneck = len(model.stages[0][0].branch) > 6  # our bottleneck branch has 9 layers, the basic one 6
        table = (PYRAMID_BOTTLENECK if bottleneck else PYRAMID_BASIC) if pyramid else RESNET_BRANCH
        if m[3] in table:
            return f"stages.{int(m[1]) - 1}.{m[2]}.branch.{table[m[3]]}.{m[4]}"
    return None




def load_official(path: str | Path, model_name: str, **options) -> nn.Module:
    """Our model ``model_name`` (a preset: pyramidnet200, resnet50, …, or a family with ``options``) with the
    weights of the authors' file."""
    state = {k.removeprefix("module."): v for k, v in read(path)["state_dict"].items()}
    if "fc.weight" not in state:
        raise ConfigError("checkpoint", str(path), "its state_dict has no fc.weight: not one of the authors' models")
    model = create_model(model_name, num_classes=state["fc.weight"].shape[0], **options)
    if not isinstance(model, PyramidNet | CifarResNet | TimmResNet):
        raise ConfigError("model", model_name, "the authors released PyramidNets and ResNets only")
    own = model.state_dict()
    mapped = {}
    for key, value in state.items():
        ours = our_key(model, key)
        if ours is None or ours not in own or own[ours].shape != value.shape:
            shape = tuple(value.shape)
            raise ConfigError("checkpoint", str(path), f"its key {key} {shape} does not fit {model_name}: "
                              "a file of another model?")
        mapped[ours] = value
    missing = [k for k in own if k not in mapped and not k.endswith("num_batches_tracked")]  # older files lack it
    if missing:
        raise ConfigError("checkpoint", str(path),
                          f"it has no weight for {missing[0]} of {model_name}: a file of another model?")
    model.load_state_dict(mapped, strict=False)
    return model.eval()
