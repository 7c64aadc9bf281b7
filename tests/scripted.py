"""A training run whose test errors are known before it starts, on any machine.

A real run's per-epoch errors depend on the floating-point trajectory (CPU vendor, BLAS build, thread
count), so a test that needs a history of a given shape (down then up, best epoch ≠ last, the best
top-1 epoch's top-5 not the lowest) builds it here by construction:

- ``coded``: a data set whose every image is one flat grey level naming its class (level 20·c), so the
  class can be read off any pixel of an unaugmented test image;
- ``ScriptedResNet``: a real CIFAR ResNet that trains as usual (loss, gradients, SGD, checkpoints), but
  in evaluation mode answers from ``PLAN``: at its k-th epoch of training, the true class of each test
  image sits at the rank the plan gives (0 = top-1). The epoch count is a buffer, so ``best.pt`` and
  ``last.pt`` evaluate to the errors of the epoch they were saved at. A zero-weighted copy of the
  network's own logits keeps gradients (FGSM) defined.
"""

from __future__ import annotations

import torch

from cutmix_repro.data.loaders import tensor_bundle
from cutmix_repro.models import CifarResNet

CLASSES, PER_CLASS = 10, 4  # 40 test images: errors in steps of 10%
TOP1, TOP5, NEITHER = 0, 2, 7  # the rank of the true class: top-1, in the top 5 only, in neither

# Per epoch, the rank of the true class of each class's images. Epoch: top-1 / top-5 error (%):
# 1: 80 / 50, 2: 50 / 30, 3: 30 / 20 (the best), 4: 40 / 10 (worse top-1, the lowest top-5).
PLAN = [
    [TOP1, TOP1, TOP5, TOP5, TOP5, NEITHER, NEITHER, NEITHER, NEITHER, NEITHER],
    [TOP1, TOP1, TOP1, TOP1, TOP1, TOP5, TOP5, NEITHER, NEITHER, NEITHER],
    [TOP1, TOP1, TOP1, TOP1, TOP1, TOP1, TOP1, TOP5, NEITHER, NEITHER],
    [TOP1, TOP1, TOP1, TOP1, TOP1, TOP1, TOP5, TOP5, TOP5, NEITHER],
]


def planned(epoch: int) -> tuple[float, float]:
    """(top-1, top-5 error in %) that ``PLAN`` gives the test set after ``epoch`` epochs (1-based)."""
    ranks = PLAN[epoch - 1]
    return 100.0 * sum(r > 0 for r in ranks) / CLASSES, 100.0 * sum(r >= 5 for r in ranks) / CLASSES


def coded(num_classes: int, train_size: int, test_size: int, image_size: int, padding: int = 4,
          hflip: bool = True, channels: int = 3, noise: float = 0.0, data_seed: int = 0, **batching):
    """Flat images of grey level 20·class (uint8); labels 0, 1, …, K−1, 0, 1, … (normalised by 0.5/0.5).
    Takes the keys of ``configs/dataset/synthetic.yaml`` (``dataset._target_=scripted.coded`` there);
    ``channels``, ``noise`` and ``data_seed`` are not used."""

    def split(n):
        labels = torch.arange(n) % num_classes
        return (labels * 20).to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, image_size, image_size).clone(), labels

    return tensor_bundle("coded", (*split(train_size), *split(test_size)), num_classes, (0.5,) * 3, (0.5,) * 3,
                         padding, hflip, **batching)


class ScriptedResNet(CifarResNet):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("epochs_trained", torch.zeros((), dtype=torch.long))
        self.training = False  # the trainer's first train() is the start of epoch 1

    def train(self, mode: bool = True):
        if mode and not self.training:
            self.epochs_trained += 1
        return super().train(mode)

    def forward(self, x, mix_layer=None, mix_fn=None):
        logits = super().forward(x, mix_layer, mix_fn)
        if self.training:
            return logits
        epoch = int(self.epochs_trained.clamp(1, len(PLAN)))
        level = (x[:, 0, x.shape[2] // 2, x.shape[3] // 2] * 0.5 + 0.5) * 255  # the image's grey level
        classes = (level / 20).round().long().clamp(0, CLASSES - 1)
        ranks = torch.tensor(PLAN[epoch - 1], device=x.device)[classes]
        # scores: the class at position p (counting from the top) is (true class − rank + p) mod K
        position = (torch.arange(CLASSES, device=x.device).view(1, -1) - classes.view(-1, 1)
                    + ranks.view(-1, 1)) % CLASSES
        return (CLASSES - position).float() + 0.0 * logits
