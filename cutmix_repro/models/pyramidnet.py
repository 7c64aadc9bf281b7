"""PyramidNet (Han et al., CVPR 2017) for CIFAR, as in the official PyramidNet/CutMix code.

Additive widening: the channel count grows by α̃/(3n) after every block, from 16 to 16+α̃
(× 4 with bottleneck blocks); n = (depth−2)/9 with bottleneck blocks, (depth−2)/6 with basic
blocks. Pre-activation branches without a final ReLU, zero-padded identity shortcuts with
2×2 average pooling where the resolution halves, no ReLU after the stem's conv-bn.
PyramidNet-200 (α̃=240) has 26,844,952 parameters with 100 classes, PyramidNet-110
(α̃=64) 1,725,300 (REFERENCE.md §4). ``shakedrop=True`` gives ShakeDrop-PyramidNet.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .cifar_resnet import _init_weights
from .layers import block_regularizers
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
    def __init__(
        self,
        depth: int = 200,
        alpha: float = 240,
        num_classes: int = 100,
        bottleneck: bool = True,
        in_chans: int = 3,
        shakedrop: bool = False,
        shakedrop_last: float = 0.5,
        drop_path_rate: float = 0.0,
        dropblock: bool = False,
        dropblock_keep: float = 0.9,
        dropblock_size: int = 4,
    ):
        super().__init__()
        per_block = 9 if bottleneck else 6
        if depth < per_block + 2 or (depth - 2) % per_block:
            raise ValueError(
                f"depth={depth!r} is invalid for a PyramidNet with "
                f"{'bottleneck' if bottleneck else 'basic'} blocks: depth must be {per_block}n+2"
            )
        if alpha < 0:
            raise ValueError(f"alpha={alpha!r} is invalid: the widening factor must be >= 0")
        n = (depth - 2) // per_block
        block = PyramidBottleneck if bottleneck else PyramidBasicBlock
        regs = iter(
            block_regularizers(
                n,
                shakedrop=shakedrop,
                shakedrop_last=shakedrop_last,
                drop_path_rate=drop_path_rate,
                dropblock=dropblock,
                dropblock_keep=dropblock_keep,
                dropblock_size=dropblock_size,
            )
        )
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
        self.num_features = cin
        self.head = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(cin, num_classes))
        _init_weights(self)
