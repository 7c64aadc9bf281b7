"""Pre-activation ResNet (He et al., 2016, "Identity Mappings in Deep Residual Networks", arXiv:1603.05027):
PreAct-ResNet-18, the model of the FMix paper's Fashion-MNIST and CIFAR rows (Harris et al., 2020).

Four stages of 64/128/256/512 planes (``width`` = 64: the first stage's, doubled at each next stage), two
pre-activation basic blocks each (18 layers),
a 3×3 stem at full resolution, global average pooling and a linear classifier. Two variants:

- ``variant: fmix`` (default; the code that produced the FMix paper's numbers, ecs-vlc/FMix ``models/resnet.py``,
  itself from kuangliu/pytorch-cifar): the stem is conv-BN-ReLU; an identity shortcut carries the block's
  *pre-activated* input ReLU(BN(x)) (the block's empty ``shortcut`` applied to ``out``); no BN-ReLU before the
  pooling; PyTorch's default initialisation.
- ``variant: he2016``: as the paper draws it: the stem is a plain convolution; an identity shortcut carries x
  itself; BN-ReLU before the pooling.

Projection shortcuts (a 1×1 convolution, no BN) where the shape changes, in both.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import ConfigError
from .layers import block_regularizers
from .staged import StagedNet

VARIANTS = ("fmix", "he2016")


class PreActBlock(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int, regularizer: nn.Module, identity_from_input: bool):
        super().__init__()
        self.bn1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(planes), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(cin, planes, 1, stride, bias=False) if stride != 1 or cin != planes else None
        self.regularizer = regularizer
        self.identity_from_input = identity_from_input

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(x))
        if self.shortcut is not None:
            shortcut = self.shortcut(out)
        else:
            shortcut = x if self.identity_from_input else out
        out = self.conv2(self.relu2(self.bn2(self.conv1(out))))
        return self.regularizer(out) + shortcut


class PreActResNet(StagedNet):
    """``block_regularization``: the options of ``layers.block_regularizers`` (``drop_path_rate``, ``dropblock``,
    ``shakedrop``, …), applied to every residual branch."""

    def __init__(self, depth: int, num_classes: int, variant: str, width: int, in_chans: int = 3,
                 **block_regularization):
        super().__init__()
        if depth != 18:
            raise ConfigError("depth", depth, "18 (2 pre-activation basic blocks in each of 4 stages)")
        if variant not in VARIANTS:
            raise ConfigError("variant", variant, "fmix (the FMix authors' code) or he2016 (the paper's drawing)")
        if width < 1:
            raise ConfigError("width", width, "the first stage's planes, >= 1 (64 in the paper; stages double it)")
        blocks, he2016 = 2, variant == "he2016"
        self.arch_name = f"preact_resnet{depth}" + (f"_w{width}" if width != 64 else "")
        stem = nn.Conv2d(in_chans, width, 3, 1, 1, bias=False)
        self.stem = stem if he2016 else nn.Sequential(stem, nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        regs = iter(block_regularizers(blocks, num_stages=4, **block_regularization))
        stages, cin = [], width
        for planes, stride in ((width, 1), (2 * width, 2), (4 * width, 2), (8 * width, 2)):
            stage = []
            for i in range(blocks):
                stage.append(PreActBlock(cin, planes, stride if i == 0 else 1, next(regs), he2016))
                cin = planes
            stages.append(nn.Sequential(*stage))
        self.stages = nn.ModuleList(stages)
        before_pool = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True)) if he2016 else nn.Identity()
        self.head = nn.Sequential(before_pool, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))

    def head_parts(self):
        return self.head[0], self.head[3]
