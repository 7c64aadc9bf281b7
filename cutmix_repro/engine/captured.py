"""``trainer.capture=true``: a whole training step — the regularizer's mixing, the forward pass, the loss, the
backward pass and the optimizer step — captured once as one CUDA graph and replayed for every full batch, so
the GPU runs a step without waiting on the host between its thousands of small kernels (what bounds a
PyramidNet-200 step on an H200: results/bench, 2026-12-01).

As PyTorch's "whole network capture" (torch.cuda.graphs): static input buffers the batch is copied into, a few
warm-up steps on a side stream (real training steps), then the capture; gradients live in the graph's memory
pool; the learning rate is a device tensor the schedule writes into (``sync_lr``), and SGD's fused kernel reads
it. The last, smaller batch of an epoch runs eagerly (a graph has static shapes). What the graph holds must not
decide on the host: the regularizer must be capturable (``regularizer.capturable=true`` for CutMix and Mixup,
whose draws are then made on the device; the baseline draws nothing). ``check_capture`` refuses in one line what
cannot hold. On the CPU nothing changes: the step runs as usual (there are no CUDA graphs to capture). A fused
group captures its step too (``fusion/loop.py``: the members mix outside the graph, each under its own random
state; the fused forward, their losses, backward and step are the graph; the members' generators, which ShakeDrop
draws from, are registered with it).

With ``graph=False`` (tests, on the CPU) the same object runs the same body eagerly: static buffers, lr tensor
and all, so the plumbing around the graph is tested where no GPU is.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from ..errors import ConfigError
from .step import loss_function

WARMUP_STEPS = 3  # eager steps on a side stream before the capture (cuDNN autotuning, lazy state, momentum)


def capturable(regularizer) -> bool:
    """A regularizer whose mixing makes no host decision: the capturable CutMix / Mixup, or no mixing at all."""
    if getattr(regularizer, "capturable", False) and getattr(regularizer, "mode", "batch") == "batch":
        return True
    return type(regularizer).__name__ == "Baseline"


def check_capture(cfg: DictConfig, regularizer, world_size: int) -> bool:
    """Whether ``trainer.capture`` is on; one ``ConfigError`` where it cannot hold."""
    t = cfg.trainer
    if not t.get("capture", False):
        return False
    if getattr(regularizer, "mixes_features", False):
        raise ConfigError("trainer.capture", True, "feature-level mixing mixes inside the network with a new "
                          "function every batch: use trainer.capture=false with it")
    if not capturable(regularizer):
        raise ConfigError("trainer.capture", True, f"the regularizer {type(regularizer).__name__} decides on the "
                          "host: use regularizer.capturable=true (CutMix, Mixup, batch mode) or trainer.capture=false")
    blocked = {"trainer.accumulate": t.get("accumulate", 1) != 1, "trainer.clip_grad_norm":
               t.get("clip_grad_norm") is not None, "trainer.compile": bool(t.compile), "trainer.amp=fp16":
               t.amp == "fp16", "DDP (torchrun)": world_size > 1}
    on = [name for name, value in blocked.items() if value]
    if on:
        raise ConfigError("trainer.capture", True, f"one graph per step does not hold with {', '.join(on)}")
    return True


class CapturedStep:
    """``body(*inputs) -> (outputs, loss)``: the step up to the loss, on static copies of ``inputs``; this object
    adds the backward pass and ``optimizer.step()`` and captures the whole as one CUDA graph (``graph=True``, on
    CUDA). ``generators``: generators the body draws from besides the default one (a fused group's members'),
    registered with the graph so that every replay draws anew from each."""

    def __init__(self, body, optimizer: torch.optim.Optimizer, device: torch.device, graph: bool | None = None,
                 generators=()):
        self.body, self.optimizer, self.device = body, optimizer, device
        self.graph_mode = device.type == "cuda" if graph is None else graph
        self.generators = [g for g in generators if g.device.type == "cuda"]
        self.warm = 0
        self.graph = None
        self.static: list[torch.Tensor] | None = None
        self.outputs = None
        self.lr = []
        for group in optimizer.param_groups:  # the lr as a device tensor the graph reads
            group["lr"] = torch.tensor(float(group["lr"]), device=device)
            self.lr.append(group["lr"])
        self.shapes = None

    def sync_lr(self, values=None) -> None:
        """After the schedule stepped (it may set ``group["lr"]`` anew), or to ``values``: the lr into the tensors
        the graph reads."""
        for i, (group, tensor) in enumerate(zip(self.optimizer.param_groups, self.lr)):
            tensor.fill_(float(group["lr"] if values is None else values[i]))
            group["lr"] = tensor

    def takes(self, *inputs: torch.Tensor) -> bool:
        """Whether these inputs go through the graph: the shapes and types of the first call's (every full batch)."""
        shapes = [(tuple(t.shape), t.dtype) for t in inputs]
        if self.shapes is None:
            self.shapes = shapes
        return shapes == self.shapes

    def _train(self, inputs):
        outputs, loss = self.body(*inputs)
        loss.backward()
        self.optimizer.step()
        return outputs, loss

    def __call__(self, *inputs: torch.Tensor):
        if self.static is None:
            self.static = [t.clone() for t in inputs]
        for static, t in zip(self.static, inputs):
            static.copy_(t)
        if not self.graph_mode:
            self.optimizer.zero_grad(set_to_none=True)
            self.outputs = self._train(self.static)
            return self.outputs
        if self.graph is None and self.warm < WARMUP_STEPS:  # real steps, on a side stream as the docs do
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                self.optimizer.zero_grad(set_to_none=True)
                outputs = self._train(self.static)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            self.warm += 1
            return outputs
        if self.graph is None:  # capture (records, runs nothing), then replay this batch
            self.optimizer.zero_grad(set_to_none=True)
            self.graph = torch.cuda.CUDAGraph()
            for generator in self.generators:
                self.graph.register_generator_state(generator)
            with torch.cuda.graph(self.graph):
                self.outputs = self._train(self.static)
        self.graph.replay()
        return self.outputs


def capture_body(model, regularizer, options):
    """A solo step up to its loss, all of it in the graph: mix (a capturable regularizer), forward, the mixed loss.
    Its outputs: (the mixed batch, the logits)."""
    def body(images, targets):
        batch = regularizer(images, targets)
        with options.autocast():
            logits = model(options.layout(batch.inputs))
        return (batch, logits), loss_function(options.loss)(logits.float(), batch, options.label_smoothing)

    return body


def make_captured(cfg: DictConfig, regularizer, model, optimizer, options, world_size: int) -> CapturedStep | None:
    """``trainer.capture``'s step for a run (``check_capture`` first: one line where it cannot hold); on the CPU
    None: nothing changes there."""
    if not check_capture(cfg, regularizer, world_size) or options.device.type != "cuda":
        return None
    return CapturedStep(capture_body(model, regularizer, options), optimizer, options.device)
