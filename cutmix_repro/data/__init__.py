"""Data sets for the trainer: each factory returns a ``DataBundle`` whose loaders yield normalised
float batches already on the training device."""

from .cifar import cifar, load_cifar
from .digits import digits
from .imagenet import imagenet
from .loaders import Batching, DataBundle, DeviceLoader, ShardSampler, TensorLoader
from .synthetic import synthetic
from .wsol import cub, imagenet_boxes, synthetic_boxes

__all__ = ["Batching", "DataBundle", "DeviceLoader", "ShardSampler", "TensorLoader", "cifar", "digits", "imagenet",
           "cub", "imagenet_boxes", "load_cifar", "synthetic", "synthetic_boxes"]
