"""The authors' CIFAR PyramidNet as their released files name its parameters (clovaai/CutMix-PyTorch,
pyramidnet.py: conv1, bn1, layerN.i.{bn1, conv1, bn2, conv2, bn3, conv3, bn4}, bn_final, fc), written
here from that description to test that their files load into our model and give the same logits."""

import torch
import torch.nn.functional as F
from torch import nn


class AuthorsBottleneck(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, planes, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(planes), nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3, self.conv3 = nn.BatchNorm2d(planes), nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn4 = nn.BatchNorm2d(planes * 4)
        self.downsample = nn.AvgPool2d(2, 2, ceil_mode=True) if stride != 1 else None

    def forward(self, x):
        out = self.conv1(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.bn4(self.conv3(F.relu(self.bn3(out))))
        shortcut = x if self.downsample is None else self.downsample(x)
        extra = out.shape[1] - shortcut.shape[1]
        return out + F.pad(shortcut, (0, 0, 0, 0, 0, extra))


class AuthorsPyramidNet(nn.Module):
    def __init__(self, depth: int, alpha: float, num_classes: int):
        super().__init__()
        n = (depth - 2) // 9
        rate, width, cin = alpha / (3 * n), 16.0, 16
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        for stage, stride in enumerate((1, 2, 2), start=1):
            blocks = []
            for i in range(n):
                width += rate
                blocks.append(AuthorsBottleneck(cin, int(round(width)), stride if i == 0 else 1))
                cin = int(round(width)) * 4
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.bn_final, self.fc = nn.BatchNorm2d(cin), nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.bn1(self.conv1(x)))))
        return self.fc(F.relu(self.bn_final(x)).mean((2, 3)))


def randomized(model: nn.Module) -> nn.Module:
    """Random weights and BatchNorm statistics, so that a wrong mapping shows in the logits."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                values = torch.rand(tensor.shape, generator=g) + 0.5 if "running_var" in name else \
                    0.2 * torch.randn(tensor.shape, generator=g)
                tensor.copy_(values)
    return model.eval()
