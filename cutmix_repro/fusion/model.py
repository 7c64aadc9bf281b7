"""Horizontal fusion (HFTA, Wang et al., MLSys 2021): k training runs of one CIFAR architecture (ResNet, PyramidNet,
PreAct-ResNet) as one model.

Member i's images go through the fused model in channel block i: an activation of the fused model is
(N, k·C, H, W), member i's (N, C, H, W) being channels [i·C, (i+1)·C). Every layer keeps the members apart:

- a convolution becomes one grouped convolution (k times the groups): member i's outputs see only its inputs;
- a BatchNorm becomes one BatchNorm over k·C channels: each channel's statistics are its member's batch's, and
  each member keeps its own running statistics (a slice of the fused ones);
- the classifier becomes a batched matrix product (one weight matrix per member);
- ReLU and pooling act per channel as they are; PyramidNet's zero-padded shortcut pads each member's block;
- the random layers draw, for each member in turn, exactly what its solo run draws, from the member's own
  generator: ShakeDrop's gate and α (forward) and β (backward) by ``generator=``, stochastic depth and
  DropBlock (timm's, which take no generator) with the member's state swapped into the default generator.

Every fused parameter is stored member-major, so that ``param.view(k, *shape)[i]`` is member i's: the members'
own models are given views of it (``share_with_members``), and one optimizer over the fused parameters does
each member's elementwise SGD step. So a fused member trains as its solo run does, up to the floating-point
order of the fused kernels (``tests/test_fused.py`` measures it).
"""

from __future__ import annotations

import contextlib
import copy
import random

import torch
import torch.nn.functional as F
from timm.layers import DropBlock2d, DropPath
from torch import Tensor, nn

from ..models.cifar_resnet import CifarResNet
from ..models.layers import ShakeDrop
from ..models.preact_resnet import PreActResNet
from ..models.pyramidnet import PyramidBasicBlock, PyramidNet

FUSABLE_MODELS = (CifarResNet, PyramidNet, PreActResNet)


class MemberRNG:
    """One member's random state, as its solo run's default generators would hold it: a CPU generator, the
    device's (the same object on the CPU) and Python's ``random``. ``active()`` swaps it into the defaults for
    code that draws from them (the data, the regularizer, a checkpoint's ``rng``); fused layers draw from
    ``device_generator`` directly."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu_generator = torch.Generator()
        self.device_generator = torch.Generator(device) if device.type == "cuda" else self.cpu_generator
        self.python = random.getstate()

    def _defaults(self) -> list[torch.Generator]:
        gens = [torch.default_generator]
        if self.device.type == "cuda":
            gens.append(torch.cuda.default_generators[self.device.index or 0])
        return gens

    def _mine(self) -> list[torch.Generator]:
        return [self.cpu_generator] + ([self.device_generator] if self.device.type == "cuda" else [])

    def capture(self) -> None:
        """Take the defaults' current state as this member's (after its solo set-up drew from them)."""
        for default, mine in zip(self._defaults(), self._mine()):
            mine.set_state(default.get_state())
        self.python = random.getstate()

    @contextlib.contextmanager
    def active(self, python: bool = True):
        defaults, mine = self._defaults(), self._mine()
        saved = [g.get_state() for g in defaults]
        saved_python = random.getstate() if python else None
        for default, own in zip(defaults, mine):
            default.set_state(own.get_state())
        if python:
            random.setstate(self.python)
        try:
            yield
        finally:
            for default, own, state in zip(defaults, mine, saved):
                own.set_state(default.get_state())
                default.set_state(state)
            if python:
                self.python = random.getstate()
                random.setstate(saved_python)


def member_view(x: Tensor, members: int) -> Tensor:
    """(N, k·C, …) → (N, k, C, …)."""
    return x.view(x.shape[0], members, x.shape[1] // members, *x.shape[2:])


def stack_members(inputs: list[Tensor]) -> Tensor:
    """The members' batches (each N×C×H×W) as one fused batch N×(k·C)×H×W."""
    x = torch.stack(inputs, 1)
    return x.view(x.shape[0], -1, *x.shape[3:])


class FusedConv2d(nn.Conv2d):
    """k convolutions as one with k times the groups; weight member-major."""

    @classmethod
    def of(cls, convs: list[nn.Conv2d]) -> FusedConv2d:
        c, k = convs[0], len(convs)
        fused = cls(c.in_channels * k, c.out_channels * k, c.kernel_size, c.stride, c.padding, c.dilation,
                    c.groups * k, c.bias is not None, c.padding_mode, device=c.weight.device, dtype=c.weight.dtype)
        fused.members = k
        with torch.no_grad():
            fused.weight.copy_(torch.cat([m.weight for m in convs]))
            if c.bias is not None:
                fused.bias.copy_(torch.cat([m.bias for m in convs]))
        return fused


class FusedBatchNorm2d(nn.BatchNorm2d):
    """k BatchNorms over their k·C channels: per-channel statistics are per member by construction."""

    @classmethod
    def of(cls, norms: list[nn.BatchNorm2d]) -> FusedBatchNorm2d:
        b = norms[0]
        fused = cls(b.num_features * len(norms), b.eps, b.momentum, b.affine, b.track_running_stats,
                    device=b.running_mean.device if b.running_mean is not None else None)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                if getattr(b, name, None) is not None:
                    getattr(fused, name).copy_(torch.cat([getattr(m, name) for m in norms]))
            if b.num_batches_tracked is not None:
                fused.num_batches_tracked.copy_(b.num_batches_tracked)
        return fused


class FusedLinear(nn.Module):
    """k linear layers as one batched product: (N, k·F) → (N, k·O); weight (k, O, F), bias (k, O)."""

    def __init__(self, linears: list[nn.Linear]):
        super().__init__()
        self.members = len(linears)
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in linears]).clone())
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in linears]).clone()) \
            if linears[0].bias is not None else None

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        out = torch.einsum("nkf,kof->nko", x.reshape(n, self.members, -1), self.weight)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(n, -1)


class _FusedShakeDropFunction(torch.autograd.Function):
    """ShakeDrop for each member's block of channels, each member's draws from its own generator in the order
    its solo run makes them (``models.layers._ShakeDropFunction``: gate, then α; β in the backward pass)."""

    @staticmethod
    def forward(ctx, x: Tensor, survival: float, generators: list) -> Tensor:
        view = member_view(x, len(generators))
        gates, factors = [], []
        for gen in generators:
            gate = torch.rand((), device=x.device, generator=gen) < survival
            alpha = torch.empty(x.shape[0], device=x.device, dtype=x.dtype).uniform_(-1.0, 1.0, generator=gen)
            gates.append(gate)
            factors.append(torch.where(gate, torch.ones_like(alpha), alpha))
        ctx.gates, ctx.generators = gates, generators
        factor = torch.stack(factors, 1).view(x.shape[0], len(generators), *([1] * (view.dim() - 2)))
        return (view * factor).view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        factors = []
        for gate, gen in zip(ctx.gates, ctx.generators):
            beta = torch.empty(grad.shape[0], device=grad.device, dtype=grad.dtype).uniform_(0.0, 1.0, generator=gen)
            factors.append(torch.where(gate, torch.ones_like(beta), beta))
        view = member_view(grad, len(factors))
        factor = torch.stack(factors, 1).view(grad.shape[0], len(factors), *([1] * (view.dim() - 2)))
        return (view * factor).view_as(grad), None, None


class FusedShakeDrop(nn.Module):
    def __init__(self, shakedrop: ShakeDrop, rngs: list[MemberRNG]):
        super().__init__()
        self.survival, self.rngs = shakedrop.survival, rngs

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return _FusedShakeDropFunction.apply(x, self.survival, [r.device_generator for r in self.rngs])
        return x * self.survival


class PerMember(nn.Module):
    """A parameter-free random layer (timm's DropPath, DropBlock2d) applied to each member's block of channels
    with the member's random state in the default generators, as in its solo run."""

    def __init__(self, layer: nn.Module, rngs: list[MemberRNG]):
        super().__init__()
        self.layer, self.rngs = layer, rngs

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return self.layer(x)
        view, out = member_view(x, len(self.rngs)), []
        for member, rng in enumerate(self.rngs):
            with rng.active(python=False):
                out.append(self.layer(view[:, member]))
        return torch.stack(out, 1).view_as(x)


def _fused_pyramid_forward(self, x: Tensor) -> Tensor:
    """PyramidNet's block with each member's shortcut zero-padded to its own width."""
    out = self.regularizer(self.branch(x))
    shortcut = self.downsample(x)
    if out.shape[1] > shortcut.shape[1]:
        view = member_view(shortcut, self.members)
        pad = out.shape[1] // self.members - view.shape[2]
        shortcut = F.pad(view, (0, 0, 0, 0, 0, pad)).view_as(out)
    return out + shortcut


def fuse_models(models: list[nn.Module], rngs: list[MemberRNG]) -> nn.Module:
    """One model that computes the k members' forward passes at once (module docstring). The members must be
    the same architecture (``FUSABLE_MODELS``) with the same options; their weights are copied in."""
    if not all(isinstance(m, FUSABLE_MODELS) for m in models):
        raise TypeError("only the CIFAR models (ResNet, PyramidNet, PreAct-ResNet) are fused")
    k = len(models)
    fused = copy.deepcopy(models[0])
    members = [dict(m.named_modules()) for m in models]
    for name, module in list(fused.named_modules()):
        if not name:
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = fused.get_submodule(parent_name) if parent_name else fused
        same = [m[name] for m in members]
        if isinstance(module, nn.Conv2d):
            new = FusedConv2d.of(same)
        elif isinstance(module, nn.BatchNorm2d):
            new = FusedBatchNorm2d.of(same)
        elif isinstance(module, nn.Linear):
            new = FusedLinear(same)
        elif isinstance(module, ShakeDrop):
            new = FusedShakeDrop(module, rngs)
        elif isinstance(module, DropPath | DropBlock2d):
            new = PerMember(module, rngs)
        else:
            if isinstance(module, PyramidBasicBlock):
                module.members = k
                module.forward = _fused_pyramid_forward.__get__(module)
            continue
        setattr(parent, attr, new)
    fused.members = k
    return fused


def share_with_members(fused: nn.Module, models: list[nn.Module]) -> dict[str, nn.Parameter]:
    """Give each member model views of the fused parameters and buffers (its own slice), so that what the fused
    model learns is what each member's ``state_dict`` holds, without copies. Returns {member name: fused
    parameter}, member-major (``fused.view(k, *shape)[i]`` is member i's)."""
    k = len(models)
    fused_params = dict(fused.named_parameters())
    fused_buffers = dict(fused.named_buffers())
    for i, model in enumerate(models):
        for name, param in list(model.named_parameters()):
            owner_name, _, attr = name.rpartition(".")
            owner = model.get_submodule(owner_name) if owner_name else model
            view = fused_params[name].data.view(k, *param.shape)[i]
            owner._parameters[attr] = nn.Parameter(view, requires_grad=False)
        for name, buffer in list(model.named_buffers()):
            owner_name, _, attr = name.rpartition(".")
            owner = model.get_submodule(owner_name) if owner_name else model
            shared = fused_buffers[name]
            owner._buffers[attr] = shared if buffer.dim() == 0 else shared.view(k, *buffer.shape)[i]
    return fused_params


def member_logits(logits: Tensor, members: int) -> list[Tensor]:
    """(N, k·classes) → each member's (N, classes)."""
    view = logits.view(logits.shape[0], members, -1)
    return [view[:, i] for i in range(members)]
