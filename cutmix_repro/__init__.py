"""cutmix-repro: a faithful, fast reproduction of CutMix (Yun et al., ICCV 2019).

Subpackages:
    regularizers  CutMix, mixup, Cutout, feature-level mixing, the mixed loss
    models        the paper's architectures behind one ``create_model`` factory
    data          CIFAR, ImageNet, digits and synthetic data with batched augmentation
    engine        the one training loop, checkpoints and logging
"""

__version__ = "0.1.0"
