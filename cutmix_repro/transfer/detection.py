"""Table 10's detectors on an ImageNet ResNet-50, built from torchvision's public classes.

- ``faster_rcnn_c4`` — the design of jwyang/faster-rcnn.pytorch, the code the paper's appendix used:
  conv1…layer3 (stride 16, 1024 channels) feed the RPN (anchors 128, 256, 512 × ratios 0.5, 1, 2) and RoI
  pooling; layer4 runs on every RoI (RoIAlign 14×14 → 7×7 after layer4's stride 2, as Detectron's C4; that
  code pools 7×7) before average pooling and a 2048-d classifier and box regressor. BatchNorm is frozen
  everywhere (``FrozenBatchNorm2d``) and conv1 and layer1 are fixed (its ``FIXED_BLOCKS = 1``). Images are
  resized to a shorter side of 600, a longer side of at most 1000; 128 RoIs per image train the head and
  300 proposals per image are scored at test time (its ``TRAIN.BATCH_SIZE``, ``TEST.RPN_POST_NMS_TOP_N``;
  set in ``configs/task/voc_faster_rcnn.yaml``).
- ``faster_rcnn_fpn`` — torchvision's standard ``fasterrcnn_resnet50_fpn`` on the same backbone (frozen
  BatchNorm, layer2…layer4 trained), for users who want today's default. Not the paper's.
- ``ssd300_r50`` — SSD300 with ResNet-50's layer2 output (38×38, 512 channels) in place of VGG's conv4_3 and
  layer3 (19×19, 1024) in place of fc7, then SSD's extra layers (10×10 512, 5×5 256, 3×3 256, 1×1 256),
  SSD300's default boxes; BatchNorm trained (batch 32), no L2Norm (BatchNorm scales the features already).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .backbone import Backbone

DETECTORS = ("faster_rcnn_c4", "faster_rcnn_fpn", "ssd300_r50")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def resnet50_with(backbone: Backbone | None, frozen_bn: bool) -> nn.Module:
    """torchvision's ResNet-50 with ``backbone``'s weights (all but ``fc``), BatchNorm frozen or not."""
    from torchvision.models import resnet50
    from torchvision.ops import FrozenBatchNorm2d

    from ..models.pretrained import StartingWeights, fit_starting_weights

    model = resnet50(norm_layer=FrozenBatchNorm2d if frozen_bn else nn.BatchNorm2d)
    if backbone is not None:  # FrozenBatchNorm2d has no num_batches_tracked; a counter, not a weight, either way
        fit_starting_weights(model, StartingWeights(backbone.state, backbone.source, "state_dict"), backbone.source,
                             classifier="fc.")
    return model


class C4Head(nn.Module):
    """layer4 on each pooled RoI, then global average pooling: the 2048-d RoI feature."""

    def __init__(self, layer4: nn.Module):
        super().__init__()
        self.layer4 = layer4

    def forward(self, x: Tensor) -> Tensor:
        return self.layer4(x).mean((2, 3))


def faster_rcnn_c4(backbone: Backbone | None, num_classes: int = 21, min_size: int = 600, max_size: int = 1000,
                   fixed_blocks: int = 1, **options) -> nn.Module:
    """``options``: any other keyword of torchvision's ``FasterRCNN`` (``box_batch_size_per_image``, …)."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    net = resnet50_with(backbone, frozen_bn=True)
    body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
    fixed = [net.conv1, net.layer1, net.layer2, net.layer3][:fixed_blocks + 1] if fixed_blocks else [net.conv1]
    for module in fixed:
        module.requires_grad_(False)
    body.out_channels = 1024
    anchors = AnchorGenerator(sizes=((128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),))
    pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=14, sampling_ratio=2)
    return FasterRCNN(body, num_classes=None, rpn_anchor_generator=anchors, box_roi_pool=pool,
                      box_head=C4Head(net.layer4), box_predictor=FastRCNNPredictor(2048, num_classes),
                      min_size=min_size, max_size=max_size, image_mean=list(IMAGENET_MEAN),
                      image_std=list(IMAGENET_STD), **options)


def faster_rcnn_fpn(backbone: Backbone | None, num_classes: int = 21, min_size: int = 600,
                    max_size: int = 1000, trainable_layers: int = 3, **options) -> nn.Module:
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import BackboneWithFPN

    net = resnet50_with(backbone, frozen_bn=True)
    trainable = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    for name, parameter in net.named_parameters():
        parameter.requires_grad_(any(name.startswith(t) for t in trainable))
    fpn = BackboneWithFPN(net, return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                          in_channels_list=[256, 512, 1024, 2048], out_channels=256)
    return FasterRCNN(fpn, num_classes=num_classes, min_size=min_size, max_size=max_size,
                      image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD), **options)


class SSDBackbone(nn.Module):
    """ResNet-50 up to layer3 and SSD300's extra layers: six feature maps (38, 19, 10, 5, 3, 1 at 300²)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.to_layer2 = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2)
        self.layer3 = net.layer3

        def extra(cin, mid, cout, stride, padding):
            return nn.Sequential(nn.Conv2d(cin, mid, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(mid, cout, 3, stride=stride, padding=padding), nn.ReLU(inplace=True))

        self.extras = nn.ModuleList([extra(1024, 256, 512, 2, 1), extra(512, 128, 256, 2, 1),
                                     extra(256, 128, 256, 1, 0), extra(256, 128, 256, 1, 0)])
        for module in self.extras.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        features = [self.to_layer2(x)]
        features.append(self.layer3(features[-1]))
        for layer in self.extras:
            features.append(layer(features[-1]))
        return OrderedDict((str(i), f) for i, f in enumerate(features))


def ssd300_r50(backbone: Backbone | None, num_classes: int = 21, size: int = 300) -> nn.Module:
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    from torchvision.models.detection.ssd import SSD

    net = resnet50_with(backbone, frozen_bn=False)
    boxes = DefaultBoxGenerator([[2], [2, 3], [2, 3], [2, 3], [2], [2]], steps=[8, 16, 32, 64, 100, 300])
    return SSD(SSDBackbone(net), boxes, (size, size), num_classes, image_mean=list(IMAGENET_MEAN),
               image_std=list(IMAGENET_STD))


def build_detector(name: str, backbone: Backbone | None, **options) -> nn.Module:
    builders = {"faster_rcnn_c4": faster_rcnn_c4, "faster_rcnn_fpn": faster_rcnn_fpn, "ssd300_r50": ssd300_r50}
    if name not in builders:
        raise ConfigError("task.detector", name, f"one of {', '.join(DETECTORS)}")
    return builders[name](backbone, **options)


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def frozen_batchnorm(model: nn.Module) -> bool:
    """True when no BatchNorm of ``model`` updates running statistics or has trainable parameters."""
    from torchvision.ops import FrozenBatchNorm2d

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm | FrozenBatchNorm2d)]
    return all(isinstance(m, FrozenBatchNorm2d) for m in norms)
