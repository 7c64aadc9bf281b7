"""A fused group's training step (``fusion/loop.py``): the members' mixed batches through the fused model at
once, each member's loss on its own logits, one backward pass and one optimizer step; and the same step as the
body of a captured CUDA graph (``trainer.capture``)."""

from __future__ import annotations

import torch

from ..engine.step import loss_function
from .model import member_logits, stack_members


def fused_step(fused, optimizer, batches: list, options, losses: list[tuple[str, float]]):
    """One training step of a fused group on the members' mixed batches: one forward pass, each member's loss
    (``losses``: its loss name and label smoothing) on its own logits, one backward pass of their sum (each
    member's weights get its own loss's gradient), one optimizer step. Returns (logits, losses) per member."""
    with options.autocast():
        logits = fused(options.layout(stack_members([b.inputs for b in batches])))
    outs = member_logits(logits, len(batches))
    values = [loss_function(name)(out.float(), batch, smoothing) for (name, smoothing), out, batch
              in zip(losses, outs, batches)]
    optimizer.zero_grad(set_to_none=True)
    torch.stack(values).sum().backward()
    optimizer.step()
    return outs, values


def captured_inputs(batches: list, device: torch.device) -> list[torch.Tensor]:
    """What a fused group's captured step copies into its static buffers: the members' mixed images (stacked) and
    each member's targets and λ (a tensor)."""
    per_member = []
    for b in batches:
        per_member += [b.targets_a, b.targets_b, torch.as_tensor(b.lam, dtype=torch.float64, device=device)]
    return [stack_members([b.inputs for b in batches]), *per_member]


def fused_capture_body(fused, options, losses: list[tuple[str, float]]):
    """The group's step up to its loss, for ``trainer.capture``: the members mixed their batches before it (each
    under its own random state, outside the graph); the fused forward pass (ShakeDrop drawing from the members'
    generators, registered with the graph) and every member's loss (``losses``: its loss name and label smoothing).
    Outputs: (logits, losses) per member."""
    from ..regularizers import MixedBatch

    k = len(losses)

    def body(x, *per_member):
        with options.autocast():
            logits = fused(options.layout(x))
        outs = member_logits(logits, k)
        values = [loss_function(name)(out.float(), MixedBatch(x, *per_member[3 * i:3 * i + 3]), smoothing)
                  for i, ((name, smoothing), out) in enumerate(zip(losses, outs))]
        return (outs, values), torch.stack(values).sum()

    return body
