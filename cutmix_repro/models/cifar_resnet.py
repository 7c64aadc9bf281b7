"""ResNet for CIFAR (He et al., 2016), as in the official CutMix code's ``resnet.py``.

Three stages of 16/32/64 planes, n blocks each: n = (depth−2)/6 with basic blocks,
n = (depth−2)/9 with bottleneck blocks (expansion 4). Projection shortcuts (1×1 conv + BN)
where the shape changes. The paper's ResNet-110 uses bottleneck blocks: 1,170,868
parameters with 100 classes (REFERENCE.md §4).
"""

from __future__ import annotations

from torch import Tensor, nn

from .layers import block_regularizers
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
    def __init__(
        self,
        depth: int = 110,
        num_classes: int = 100,
        bottleneck: bool = True,
        in_chans: int = 3,
        drop_path_rate: float = 0.0,
        dropblock: bool = False,
        dropblock_keep: float = 0.9,
        dropblock_size: int = 4,
    ):
        super().__init__()
        per_block = 9 if bottleneck else 6
        if depth < per_block + 2 or (depth - 2) % per_block:
            raise ValueError(
                f"depth={depth!r} is invalid for a CIFAR ResNet with "
                f"{'bottleneck' if bottleneck else 'basic'} blocks: depth must be {per_block}n+2"
            )
        n = (depth - 2) // per_block
        block = Bottleneck if bottleneck else BasicBlock
        regs = iter(
            block_regularizers(
                n,
                drop_path_rate=drop_path_rate,
                dropblock=dropblock,
                dropblock_keep=dropblock_keep,
                dropblock_size=dropblock_size,
            )
        )
        self.stem = nn.Sequential(*_conv_bn(in_chans, 16, 3), nn.ReLU(inplace=True))
        stages, cin = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(block(cin, planes, stride if i == 0 else 1, next(regs)))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.num_features = cin
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))
        _init_weights(self)


def _init_weights(model: nn.Module) -> None:
    """He initialisation for convs, BN weight 1 / bias 0, as the official code."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
