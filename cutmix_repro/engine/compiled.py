"""``trainer.compile=true``: the model under ``torch.compile``, with a bounded number of compilations.

What is compiled depends on where the regularizer mixes:

- at the input (CutMix, mixup, Cutout, baseline, …): the whole model, one graph for the forward pass
  (and one for its backward), which ``compile_mode=reduce-overhead`` replays as CUDA graphs;
- inside the network (feature-level CutMix/mixup, whose ``mix_fn`` is a new closure every batch):
  the stem and each stage, with the mixing between them left eager.

Each compiled module is compiled with static shapes (``dynamic=False``): one graph per (batch size,
train/eval), i.e. the full batch, the last partial batch and evaluation. The stages share one code
object (``nn.Module._call_impl``) and therefore one dynamo cache, so its recompile limit is raised to
cover them all, and hitting it is an error (``fail_on_recompile_limit_hit``): a run never silently
falls back to eager.

``compiled_graphs()`` reads dynamo's own counters (graphs compiled, graph breaks in this process);
the trainer logs them per epoch, so a run shows that nothing recompiles after its first epoch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")  # inductor modes that replay CUDA graphs
GRAPHS_PER_MODULE = 8  # train/eval × full/partial batch = 4, and room for the CAM images' batch


def compile_modes() -> list[str]:
    import torch._inductor

    return list(torch._inductor.list_mode_options())


def check_compile(mode: str, backend: str) -> None:
    if backend not in torch._dynamo.list_backends(exclude_tags=()):
        raise ConfigError("trainer.compile_backend", backend,
                          "choose inductor, or another torch._dynamo.list_backends() name (eager, aot_eager, …)")
    if mode not in compile_modes():
        raise ConfigError("trainer.compile_mode", mode, f"choose one of {', '.join(compile_modes())}")
    if mode != "default" and backend != "inductor":
        raise ConfigError("trainer.compile_mode", mode, "a mode other than default needs compile_backend=inductor")


def compile_model(model: nn.Module, feature_mixing: bool, mode: str = "default", backend: str = "inductor") -> str:
    """Compile ``model`` in place (``state_dict`` keys unchanged). Returns what was compiled: ``"model"``
    or ``"stages"``. Resets dynamo first: a multirun trains many models in one process."""
    from torch._dynamo.utils import counters

    check_compile(mode, backend)
    torch._dynamo.reset()
    counters.clear()
    modules = [b for b in model.feature_blocks() if isinstance(b, nn.Module)] if feature_mixing else [model]
    config = torch._dynamo.config
    config.recompile_limit = GRAPHS_PER_MODULE * len(modules)
    config.fail_on_recompile_limit_hit = True
    options: dict[str, Any] = {"backend": backend, "dynamic": False}
    if backend == "inductor":
        options["mode"] = mode
    if feature_mixing:
        model.compile_stages(**options)
        return "stages"
    model.compile(**options)
    return "model"


def compiled_graphs() -> dict[str, int]:
    """Graphs dynamo compiled and graph breaks it met in this process (since its last reset)."""
    from torch._dynamo.utils import counters

    return {"graphs": int(counters["stats"]["unique_graphs"]),
            "graph_breaks": int(sum(counters["graph_break"].values()))}
