"""The training engine: one loop, checkpoints, metrics, records."""

from .checkpoint import CheckpointError
from .trainer import RunDirError, TrainingDiverged, evaluate, fit, train_one_epoch

__all__ = ["CheckpointError", "RunDirError", "TrainingDiverged", "evaluate", "fit", "train_one_epoch"]
