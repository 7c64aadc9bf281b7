"""ImageNet ResNets from timm (ResNet-50, ResNet-101, ResNeXt-101 32x4d: the torchvision designs),
without pretrained weights, seen through the same stem → stages → head structure as the CIFAR
models.

Initialised as the official code's ImageNet ResNets: He-normal convolutions and every BatchNorm
weight 1 (timm's default would zero the last BatchNorm of each block). Stochastic depth and
DropBlock are timm's own options (``drop_path_rate``, ``drop_block_rate``); the stem is timm's
conv-bn-ReLU-maxpool, so feature index 1 is after the max-pool.

For localization (paper appendix B): ``last_stride=1`` keeps the last stage at the third stage's
resolution (a 14×14 map at 224 input, no dilation), and ``init_from`` starts from any weights file
``models.pretrained`` reads (torchvision's ImageNet weights, a run or checkpoint of ours, the authors' release, a
state dict; timm's ResNets have torchvision's key names), the classifier new for the data set's classes.
"""

from __future__ import annotations

import timm
from torch import Tensor, nn

from ..errors import ConfigError
from .pretrained import load_starting_weights
from .staged import StagedNet


class TimmResNet(StagedNet):
    def __init__(self, variant: str, num_classes: int, drop_path_rate: float, dropblock: bool, last_stride: int,
                 init_from: str | None, in_chans: int = 3, dropblock_keep: float = 0.9):
        super().__init__()
        if not timm.is_model(variant) or not variant.startswith(("resnet", "resnext")):
            raise ConfigError("variant", variant, "a timm ResNet name such as resnet50, resnet101, resnext101_32x4d")
        self.arch_name = variant
        self.net = timm.create_model(
            variant,
            pretrained=False,
            num_classes=num_classes,
            in_chans=in_chans,
            drop_path_rate=drop_path_rate,
            drop_block_rate=(1.0 - dropblock_keep) if dropblock else 0.0,
            zero_init_last=False,
        )
        if last_stride not in (1, 2):
            raise ConfigError("last_stride", last_stride, "2 (the ImageNet ResNet) or 1 (appendix B's localization)")
        if last_stride == 1:
            first = self.net.layer4[0]  # the stride is conv2's in a bottleneck, conv1's in a basic block
            for conv in (first.conv1, first.conv2, first.downsample[0]):
                conv.stride = (1, 1)
        if init_from is not None:
            load_starting_weights(self.net, str(init_from), variant, classifier="fc.")

    # Views of timm's modules, kept out of the module tree (object.__setattr__) so that
    # parameters and state_dict keys stay timm's own.
    @property
    def stem(self) -> nn.Sequential:
        if "_stem_view" not in self.__dict__:
            net = self.net
            object.__setattr__(self, "_stem_view", nn.Sequential(net.conv1, net.bn1, net.act1, net.maxpool))
        return self.__dict__["_stem_view"]

    @property
    def stages(self) -> list[nn.Module]:
        return [self.net.layer1, self.net.layer2, self.net.layer3, self.net.layer4]

    def head(self, x: Tensor) -> Tensor:
        return self.net.forward_head(x)

    def head_parts(self):
        return nn.Identity(), self.net.fc
