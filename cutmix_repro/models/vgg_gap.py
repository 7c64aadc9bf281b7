"""VGG-GAP, the VGG localization network of the CAM paper (Zhou et al., CVPR 2016) that the CutMix paper
uses in Table 9 (appendix B): VGG-16's convolutions up to conv5_3 (pool5 removed, so a 224 input gives a
14×14 map), a 3×3 convolution with 1024 channels and ReLU, global average pooling and a linear
classifier. Built from torchvision's VGG-16; ``init_from`` loads torchvision's ImageNet weights (or any
torchvision-named VGG-16 state dict) into the VGG convolutions, or a checkpoint of ours into the whole network
but the classifier (``models.pretrained`` reads every format).

Staged as the other models: stem = block 1 (conv1_1, conv1_2, pool1), stages = blocks 2, 3, 4 and
block 5 with the new convolution.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import vgg16

from .pretrained import load_starting_weights
from .staged import StagedNet

BLOCKS = ((0, 5), (5, 10), (10, 17), (17, 24), (24, 30))  # torchvision's vgg16.features index ranges


class VggGap(StagedNet):
    def __init__(self, num_classes: int, width: int, init_from: str | None, in_chans: int = 3):
        super().__init__()
        self.arch_name = "vgg16_gap"
        features = vgg16(weights=None).features
        if in_chans != 3:
            features[0] = nn.Conv2d(in_chans, 64, 3, padding=1)
        blocks = [nn.Sequential(*features[a:b]) for a, b in BLOCKS]  # each indexed from 0
        self.stem = blocks[0]
        last = nn.Sequential(*blocks[4], nn.Conv2d(512, width, 3, padding=1), nn.ReLU(inplace=True))
        self.stages = nn.ModuleList([*blocks[1:4], last])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
        if init_from is not None:  # torchvision-named weights: its convolutions only, the new layers kept fresh
            load_starting_weights(self, str(init_from), "vgg16", classifier="head.", rename=self._our_key,
                                  new=("stages.3.6.",))

    @staticmethod
    def _our_key(key: str) -> str | None:
        """torchvision's ``features.i.name`` → ours (block of index i); its fully connected layers have none."""
        if not key.startswith("features."):
            return None
        _, index, name = key.split(".")
        block = next(b for b, (a, z) in enumerate(BLOCKS) if a <= int(index) < z)
        where = "stem" if block == 0 else f"stages.{block - 1}"
        return f"{where}.{int(index) - BLOCKS[block][0]}.{name}"

    def head_parts(self):
        return nn.Identity(), self.head[2]
