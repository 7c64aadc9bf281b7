"""The paper's architectures behind one timm-style factory."""

from .cifar_resnet import CifarResNet
from .factory import IMAGENET_MODELS, count_parameters, create_model, list_models
from .layers import ShakeDrop
from .pyramidnet import PyramidNet
from .staged import StagedNet
from .timm_resnet import TimmResNet

__all__ = [
    "IMAGENET_MODELS",
    "CifarResNet",
    "PyramidNet",
    "ShakeDrop",
    "StagedNet",
    "TimmResNet",
    "count_parameters",
    "create_model",
    "list_models",
]
