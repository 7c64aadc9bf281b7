"""PyramidNet (Han et al., CVPR 2017) for CIFAR, as in the official PyramidNet/CutMix code.

Additive widening: the channel count grows by α̃/(3n) after every block, from 16 to 16+α̃
(× 4 with bottleneck blocks); n = (depth−2)/9 with bottleneck blocks, (depth−2)/6 with basic
blocks. Pre-activation branches without a final ReLU, zero-padded identity shortcuts with
2×2 average pooling where the resolution halves, no ReLU after the stem's conv-bn.
The paper's PyramidNet-200 (α̃=240, Tables 5, 7, 8) and PyramidNet-110 (α̃=64, Table 6) use
bottleneck blocks (26.8M and 1.7M parameters). ``shakedrop=True`` gives ShakeDrop-PyramidNet.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .cifar_resnet import init_weights
from .layers import block_regularizers, blocks_per_stage
from .staged import StagedNet


class PyramidBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, regularizer: nn.Module):
        super().__init__()
        self.branch = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, planes, 3, stride, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, 1, 1, bias=False),
            nn.BatchNorm2d(planes),
        )
        self.regularizer = regularizer
        self.downsample = nn.AvgPool2d(2, 2, ceil_mode=True) if stride != 1 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.regularizer(self.branch(x))
        shortcut = self.downsample(x)
        pad = out.shape[1] - shortcut.shape[1]
        if pad > 0:  # zero-padded channels: the identity shortcut of PyramidNet
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, pad))
        return out + shortcut


class PyramidBottleneck(PyramidBasicBlock):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, regularizer: nn.Module):
        super().__init__(cin, planes, stride, regularizer)
        self.branch = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, planes, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes * self.expansion, 1, bias=False),
            nn.BatchNorm2d(planes * self.expansion),
        )


class PyramidNet(StagedNet):
    """``block_regularization``: the options of ``layers.block_regularizers`` (``shakedrop``,
    ``drop_path_rate``, ``dropblock``, …), applied to every residual branch."""

    def __init__(self, depth: int, alpha: float, bottleneck: bool, num_classes: int, in_chans: int = 3,
                 **block_regularization):
        super().__init__()
        n = blocks_per_stage(depth, bottleneck, "PyramidNet")
        if alpha < 0:
            raise ConfigError("alpha", alpha, "the widening factor must be >= 0")
        self.arch_name = f"pyramidnet{depth}"
        block = PyramidBottleneck if bottleneck else PyramidBasicBlock
        regs = iter(block_regularizers(n, **block_regularization))
        add_rate = alpha / (3 * n)
        self.stem = nn.Sequential(nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16))
        width, cin, stages = 16.0, 16, []
        for stride in (1, 2, 2):
            blocks = []
            for i in range(n):
                width += add_rate
                planes = int(round(width))
                blocks.append(block(cin, planes, stride if i == 0 else 1, next(regs)))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(cin, num_classes))
        init_weights(self)

    def head_parts(self):
        return self.head[:2], self.head[4]
