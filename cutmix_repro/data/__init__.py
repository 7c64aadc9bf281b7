"""Data sets for the trainer: each factory returns a ``DataBundle`` whose loaders yield
normalised float batches already on the training device."""

from .bundle import DataBundle, DataError
from .cifar import cifar, load_cifar
from .digits import digits
from .imagenet import imagenet
from .synthetic import synthetic
from .tensor_loader import TensorLoader

__all__ = ["DataBundle", "DataError", "TensorLoader", "cifar", "digits", "imagenet", "load_cifar", "synthetic"]
