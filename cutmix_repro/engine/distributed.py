"""torch.distributed set-up from torchrun's environment: NCCL on CUDA, gloo on the CPU."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(requested: str, local_rank: int = 0) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"trainer.device={requested!r} is invalid: choose auto, cpu or cuda")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("trainer.device='cuda' is invalid here: no CUDA device is visible; use auto or cpu")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def _from_slurm_tasks() -> None:
    """Several SLURM tasks of one job (submitit's tasks_per_node > 1) are DDP ranks: export
    RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT as torchrun would."""
    if "RANK" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) <= 1:
        return
    try:
        from submitit.helpers import TorchDistributedEnvironment
    except ImportError:
        return
    TorchDistributedEnvironment().export()


def setup(requested_device: str) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun or as several SLURM tasks."""
    _from_slurm_tasks()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(requested_device, info.local_rank)
    if info.enabled and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def collective_device() -> torch.device:
    """Where small collective tensors live: the current GPU under NCCL, else the CPU."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics), which is what rank 0 saves."""
    if dist.is_available() and dist.is_initialized():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def gather_floats(value: float) -> list[float]:
    """Every rank's value, in rank order (on every rank)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return [float(v) for v in out]


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def teardown(together: bool = True) -> None:
    """Leave the process group together and before the interpreter shuts down: every rank
    waits for the others, the training objects that still hold the group (DDP's reducer
    sits in reference cycles) are freed, then the group is destroyed. A gloo group left to
    the interpreter's exit can abort the process (``terminate called without an active
    exception``) after a run that otherwise finished. ``together=False`` (after an error, when
    the other ranks may never arrive) skips the wait."""
    if dist.is_available() and dist.is_initialized():
        if together:
            dist.barrier()
        gc.collect()
        dist.destroy_process_group()
