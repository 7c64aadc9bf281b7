"""A fused group's members (``fusion/loop.py``): each member's run as its solo run started it, its random state,
its log lines (its own ``train.log``), its checkpoint cut out of the group's weights and momentum buffers, and
the check that stops a member whose loss became NaN."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from ..engine.metrics import Meter
from ..engine.step import TrainingDiverged
from ..engine.trainer import Started, checkpoint_state, diverged
from .model import MemberRNG

log = logging.getLogger("cutmix_repro")

# each member's log lines go to its own train.log (lines of the whole group go to every member's)
_current = contextvars.ContextVar("fused_member", default=None)


class MemberFilter(logging.Filter):
    def __init__(self, index: int):
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        return _current.get() in (None, self.index)


@contextlib.contextmanager
def speaking_for(index: int):
    token = _current.set(index)
    try:
        yield
    finally:
        _current.reset(token)


@dataclass
class Member:
    index: int
    run: Started
    rng: MemberRNG
    meter: Meter | None = None
    first_bad: torch.Tensor | None = None
    failed: str | None = None  # the error line of a member that stopped (diverged)
    stepped: bool = False  # the group took a step (a memory error after it is not a group too large)
    slot: int = 0  # its place in the fused model (its block of channels)
    names: dict[int, str] = field(default_factory=dict)  # id(param) -> name, the member optimizer's parameters


def member_state(member: Member, fused_optimizer, fused_params, k: int) -> dict[str, Any]:
    """The member's checkpoint, exactly a solo run's: its weights (copies, not views of the group's), its
    optimizer with its slice of the momentum buffers, its random state."""
    parts, i = member.run.parts, member.slot
    for group in parts.optimizer.param_groups:
        for p in group["params"]:
            fused = fused_params[member.names[id(p)]]
            buffer = fused_optimizer.state.get(fused, {}).get("momentum_buffer")
            if buffer is not None:
                parts.optimizer.state[p] = {"momentum_buffer": buffer.view(k, *p.shape)[i].clone()}
    with member.rng.active():
        state = checkpoint_state(parts, member.run.position)
    state["model"] = {name: value.clone() for name, value in state["model"].items()}
    return state


def group_optimizer(members: list[Member], fused_params: dict[str, torch.nn.Parameter]):
    """One optimizer of the members' class and options over the fused weights, its momentum buffers the members'
    (a resumed group's), stacked."""
    first = members[0].run.parts.optimizer
    groups = [{**{k: v for k, v in g.items() if k != "params"},
               "params": [fused_params[members[0].names[id(p)]] for p in g["params"]]} for g in first.param_groups]
    optimizer = type(first)(groups, **first.defaults)
    for g_index, group in enumerate(first.param_groups):
        for p_index, _ in enumerate(group["params"]):
            buffers = [m.run.parts.optimizer.state.get(m.run.parts.optimizer.param_groups[g_index]["params"][p_index],
                                                       {}).get("momentum_buffer") for m in members]
            if all(b is not None for b in buffers):
                fused = optimizer.param_groups[g_index]["params"][p_index]
                optimizer.state[fused] = {"momentum_buffer": torch.cat([b.reshape(-1) for b in buffers])
                                          .view_as(fused).clone()}
    return optimizer


def check_members(members: list[Member], epoch: int) -> None:
    """A member whose loss became NaN or infinite stops as its solo run would (``diverged``); the others go on."""
    for m in members:
        if m.failed or int(m.first_bad.item()) < 0:
            continue
        error = TrainingDiverged(f"loss became NaN or infinite at epoch {epoch + 1}, step {int(m.first_bad) + 1}")
        with speaking_for(m.index):
            m.failed = diverged(m.run, str(error))
            log.error("%s", m.failed)
