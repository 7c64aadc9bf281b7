"""torch.distributed from torchrun's environment (or several SLURM tasks of one job): the one place
that joins the process group and knows this process's rank. Gloo carries CPU tensors and NCCL CUDA
tensors of the same group (``cpu:gloo,cuda:nccl``); on a machine without CUDA, gloo alone."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ConfigError


@dataclass(frozen=True)
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


def join() -> DistInfo:
    """Join the process group when launched as several processes (idempotent); this process's place."""
    _from_slurm_tasks()
    info = DistInfo(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                    int(os.environ.get("LOCAL_RANK", "0")))
    if info.enabled and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend="cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    return info


def rank() -> int:
    """This process's rank (0 without a process group), before or after ``join``."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else int(os.environ.get("RANK", "0"))


def resolve_device(requested: str, local_rank: int) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ConfigError("trainer.device", requested, "choose auto, cpu or cuda")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device", requested, "no CUDA device is visible here; use auto or cpu")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def setup(requested_device: str) -> tuple[DistInfo, torch.device]:
    info = join()
    return info, resolve_device(requested_device, info.local_rank)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def collective_device() -> torch.device:
    """Where small collective tensors live: the current GPU under NCCL alone, else the CPU."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics), which is what rank 0 saves."""
    if dist.is_available() and dist.is_initialized():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def broadcast_object(value):
    """Rank 0's ``value`` on every rank (itself without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_floats(value: float) -> list[float]:
    """Every rank's value, in rank order (on every rank)."""
    return [float(v) for v in gather_objects(value)]


def gather_objects(value) -> list:
    """Every rank's (picklable) value, in rank order, on every rank; ``[value]`` without a process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def settle(timeout_s: float = 120.0) -> None:
    """Before a rank exits on an error: wait (at most ``timeout_s``) until every rank got there. torchrun
    stops the other workers as soon as one exits with an error, so without this a rank that is quicker to
    fail could end rank 0 before it has printed the error line. Gloo's ``monitored_barrier``; where it is
    not available, or a rank never arrives (it failed otherwise, or is still training), the wait ends."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    import datetime

    try:
        dist.monitored_barrier(timeout=datetime.timedelta(seconds=timeout_s), wait_all_ranks=True)
    except Exception:  # a timeout, or a backend without it: exit anyway
        pass


def teardown(together: bool) -> None:
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
