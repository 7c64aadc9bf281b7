"""ImageNet ResNet-50, ResNet-101 and ResNeXt-101 32x4d from timm, without pretrained weights,
seen through the same stem → stages → head structure as the CIFAR models.

timm's ``resnet50``/``resnet101``/``resnext101_32x4d`` are the torchvision designs
(25,557,032 / 44,549,160 / 44,177,704 parameters with 1000 classes). Stochastic depth and
DropBlock are timm's own options (``drop_path_rate``, ``drop_block_rate``); the stem here is
timm's conv-bn-ReLU-maxpool, so feature index 1 is after the max-pool.
"""

from __future__ import annotations

import timm
from torch import Tensor, nn

from .staged import StagedNet


class TimmResNet(StagedNet):
    def __init__(
        self,
        name: str,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_path_rate: float = 0.0,
        dropblock: bool = False,
        dropblock_keep: float = 0.9,
    ):
        super().__init__()
        self.net = timm.create_model(
            name,
            pretrained=False,
            num_classes=num_classes,
            in_chans=in_chans,
            drop_path_rate=drop_path_rate,
            drop_block_rate=(1.0 - dropblock_keep) if dropblock else 0.0,
        )
        self.num_features = self.net.num_features

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
