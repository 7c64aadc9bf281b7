"""The paper's architectures: every one with the staged interface (``stem``, ``stages``, ``head``)."""

from .cifar_resnet import CifarResNet
from .factory import arch_name, count_parameters, create_model, list_models, model_config, model_inputs
from .layers import ShakeDrop
from .preact_resnet import PreActResNet
from .pyramidnet import PyramidNet
from .staged import StagedNet
from .timm_resnet import TimmResNet
from .vgg_gap import VggGap

__all__ = [
    "arch_name",
    "CifarResNet",
    "PreActResNet",
    "PyramidNet",
    "ShakeDrop",
    "StagedNet",
    "TimmResNet",
    "VggGap",
    "count_parameters",
    "create_model",
    "list_models",
    "model_config",
    "model_inputs",
]
