"""Data sets for the trainer: each factory returns a ``DataBundle`` whose loaders yield normalised
float batches already on the training device."""

from .cifar import cifar, load_cifar
from .digits import digits
from .fashion_boxes import fashion_mnist_boxes
from .fashion_mnist import fashion_mnist, load_fashion_mnist
from .imagenet import imagenet
from .loaders import Batching, DataBundle, DeviceLoader, ShardSampler, TensorLoader
from .synthetic import synthetic
from .wsol import cub, imagenet_boxes, synthetic_boxes

__all__ = ["Batching", "DataBundle", "DeviceLoader", "ShardSampler", "TensorLoader", "cifar", "digits", "fashion_mnist",
           "fashion_mnist_boxes",
           "imagenet", "cub", "imagenet_boxes", "load_cifar", "load_fashion_mnist", "synthetic", "synthetic_boxes"]
