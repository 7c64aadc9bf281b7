"""Per-block regularizers of Table 5: ShakeDrop, stochastic depth, DropBlock.

Stochastic depth uses timm's ``DropPath`` and DropBlock timm's ``DropBlock2d``; ShakeDrop
(Yamada et al., 2019, arXiv:1802.02375) is written here, as in the authors' code.
"""

from __future__ import annotations

import torch
from timm.layers import DropBlock2d, DropPath
from torch import Tensor, nn

from ..errors import ConfigError


class _ShakeDropFunction(torch.autograd.Function):
    """Forward x·(b + α − bα), backward grad·(b + β − bβ); b per batch, α, β per sample. The gate b is a
    device tensor and applied with ``torch.where``: no host decision, so a compiled graph does not break."""

    @staticmethod
    def forward(ctx, x: Tensor, survival: float) -> Tensor:
        gate = torch.rand((), device=x.device) < survival
        ctx.save_for_backward(gate)
        alpha = torch.empty(x.shape[0], device=x.device, dtype=x.dtype).uniform_(-1.0, 1.0)
        return x * torch.where(gate, torch.ones_like(alpha), alpha).view(-1, *([1] * (x.dim() - 1)))

    @staticmethod
    def backward(ctx, grad: Tensor):
        (gate,) = ctx.saved_tensors
        beta = torch.empty(grad.shape[0], device=grad.device, dtype=grad.dtype).uniform_(0.0, 1.0)
        return grad * torch.where(gate, torch.ones_like(beta), beta).view(-1, *([1] * (grad.dim() - 1))), None


class ShakeDrop(nn.Module):
    """ShakeDrop on a residual branch F(x); at test time the expectation p·F(x)."""

    def __init__(self, survival: float):
        super().__init__()
        if not 0.0 <= survival <= 1.0:
            raise ConfigError("survival", survival, "must lie in [0, 1]")
        self.survival = survival

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return _ShakeDropFunction.apply(x, self.survival)
        return x * self.survival

    def extra_repr(self) -> str:
        return f"survival={self.survival:.4f}"


def shakedrop_survivals(num_blocks: int, last: float = 0.5) -> list[float]:
    """p_l = 1 − (l/L)(1 − p_L): linear decay from 1 to p_L at the last block."""
    return [1.0 - (i + 1) / num_blocks * (1.0 - last) for i in range(num_blocks)]


def drop_path_rates(num_blocks: int, rate: float) -> list[float]:
    """Stochastic depth's linear decay rule: 0 at the first block, ``rate`` at the last."""
    if num_blocks == 1:
        return [rate]
    return [rate * i / (num_blocks - 1) for i in range(num_blocks)]


def branch_regularizer(
    shakedrop: float | None, drop_path: float, dropblock: tuple[float, int] | None
) -> nn.Module:
    """What follows one residual branch: ShakeDrop, DropPath and/or DropBlock (else Identity)."""
    parts: list[nn.Module] = []
    if dropblock is not None:
        keep, size = dropblock
        parts.append(DropBlock2d(drop_prob=1.0 - keep, block_size=size))
    if shakedrop is not None:
        parts.append(ShakeDrop(shakedrop))
    if drop_path > 0:
        parts.append(DropPath(drop_path))
    if not parts:
        return nn.Identity()
    return parts[0] if len(parts) == 1 else nn.Sequential(*parts)


def block_regularizers(
    blocks_per_stage: int,
    num_stages: int = 3,
    shakedrop: bool = False,
    shakedrop_last: float = 0.5,
    drop_path_rate: float = 0.0,
    dropblock: bool = False,
    dropblock_keep: float = 0.9,
    dropblock_size: int = 4,
) -> list[nn.Module]:
    """One branch regularizer per residual block, in order.

    ShakeDrop and stochastic depth follow the linear decay rule over all blocks; DropBlock
    goes on the branches of the last two stages (the DropBlock paper uses ResNet's groups 3
    and 4; a CIFAR network has three stages)."""
    if not 0.0 <= drop_path_rate < 1.0:
        raise ConfigError("drop_path_rate", drop_path_rate, "must lie in [0, 1)")
    if dropblock and not 0.0 < dropblock_keep <= 1.0:
        raise ConfigError("dropblock_keep", dropblock_keep, "must lie in (0, 1]")
    total = blocks_per_stage * num_stages
    survivals = shakedrop_survivals(total, shakedrop_last) if shakedrop else [None] * total
    rates = drop_path_rates(total, drop_path_rate)
    modules = []
    for i in range(total):
        in_last_two = i // blocks_per_stage >= num_stages - 2
        block = (dropblock_keep, dropblock_size) if dropblock and in_last_two else None
        modules.append(branch_regularizer(survivals[i], rates[i], block))
    return modules


def blocks_per_stage(depth: int, bottleneck: bool, family: str) -> int:
    """n = (depth − 2)/9 with bottleneck blocks (three layers each), (depth − 2)/6 with basic blocks."""
    per_block = 9 if bottleneck else 6
    if depth < per_block + 2 or (depth - 2) % per_block:
        kind = "bottleneck" if bottleneck else "basic"
        raise ConfigError("depth", depth, f"a {family} with {kind} blocks has depth {per_block}n+2")
    return (depth - 2) // per_block
