"""ResNet for CIFAR (He et al., 2016), as in the official CutMix code's ``resnet.py``.

Three stages of 16/32/64 planes, n blocks each: n = (depth−2)/9 with bottleneck blocks,
n = (depth−2)/6 with basic blocks (expansion 4). Projection shortcuts (1×1 conv + BN)
where the shape changes. The paper's ResNet-110 (Table 6, 1.1M parameters) uses bottleneck
blocks: basic blocks would give 1.7M.
"""

from __future__ import annotations

from torch import Tensor, nn

from .layers import block_regularizers, blocks_per_stage
from .staged import StagedNet


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, regularizer: nn.Module):
        super().__init__()
        self.branch = nn.Sequential(
            *_conv_bn(cin, planes, 3, stride), nn.ReLU(inplace=True), *_conv_bn(planes, planes, 3)
        )
        self.regularizer = regularizer
        cout = planes * self.expansion
        self.shortcut = (
            nn.Sequential(*_conv_bn(cin, cout, 1, stride)) if stride != 1 or cin != cout else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.regularizer(self.branch(x)) + self.shortcut(x))


class Bottleneck(BasicBlock):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, regularizer: nn.Module):
        super().__init__(cin, planes, stride, regularizer)
        self.branch = nn.Sequential(
            *_conv_bn(cin, planes, 1),
            nn.ReLU(inplace=True),
            *_conv_bn(planes, planes, 3, stride),
            nn.ReLU(inplace=True),
            *_conv_bn(planes, planes * self.expansion, 1),
        )


class CifarResNet(StagedNet):
    """``block_regularization``: the options of ``layers.block_regularizers`` (``shakedrop``,
    ``drop_path_rate``, ``dropblock``, …), applied to every residual branch."""

    def __init__(self, depth: int, bottleneck: bool, num_classes: int, in_chans: int = 3,
                 **block_regularization):
        super().__init__()
        n = blocks_per_stage(depth, bottleneck, "CIFAR ResNet")
        self.arch_name = f"resnet{depth}"
        block = Bottleneck if bottleneck else BasicBlock
        regs = iter(block_regularizers(n, **block_regularization))
        self.stem = nn.Sequential(*_conv_bn(in_chans, 16, 3), nn.ReLU(inplace=True))
        stages, cin = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(block(cin, planes, stride if i == 0 else 1, next(regs)))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))
        init_weights(self)

    def head_parts(self):
        return nn.Identity(), self.head[2]


def init_weights(model: nn.Module) -> None:
    """He initialisation for convs (fan-out), BN weight 1 / bias 0, as the official code."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
