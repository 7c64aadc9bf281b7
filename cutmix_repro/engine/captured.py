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
cannot hold. On the CPU nothing changes: the step runs as usual (there are no CUDA graphs to capture).

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
    """``body(images, targets) -> (batch, logits, loss)``: the step up to the loss; this object adds the backward
    pass and ``optimizer.step()`` and captures the whole as one CUDA graph (``graph=True``, on CUDA)."""

    def __init__(self, body, optimizer: torch.optim.Optimizer, device: torch.device, graph: bool | None = None):
        self.body, self.optimizer, self.device = body, optimizer, device
        self.graph_mode = device.type == "cuda" if graph is None else graph
        self.warm = 0
        self.graph = None
        self.static: tuple | None = None
        self.outputs = None
        self.lr = []
        for group in optimizer.param_groups:  # the lr as a device tensor the graph reads
            group["lr"] = torch.tensor(float(group["lr"]), device=device)
            self.lr.append(group["lr"])
        self.shape = None

    def sync_lr(self) -> None:
        """After the schedule stepped (it sets ``group["lr"]`` anew): its value into the tensor the graph reads."""
        for group, tensor in zip(self.optimizer.param_groups, self.lr):
            tensor.fill_(float(group["lr"]))
            group["lr"] = tensor

    def takes(self, images: torch.Tensor) -> bool:
        """Whether this batch goes through the graph (every full batch; the first one fixes the shape)."""
        if self.shape is None:
            self.shape = tuple(images.shape)
        return tuple(images.shape) == self.shape

    def _train(self, images, targets):
        batch, logits, loss = self.body(images, targets)
        loss.backward()
        self.optimizer.step()
        return batch, logits, loss

    def __call__(self, images: torch.Tensor, targets: torch.Tensor):
        if self.static is None:
            self.static = (images.clone(), targets.clone())
        x, y = self.static
        x.copy_(images)
        y.copy_(targets)
        if not self.graph_mode:
            self.optimizer.zero_grad(set_to_none=True)
            self.outputs = self._train(x, y)
            return self.outputs
        if self.graph is None and self.warm < WARMUP_STEPS:  # real steps, on a side stream as the docs do
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                self.optimizer.zero_grad(set_to_none=True)
                outputs = self._train(x, y)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            self.warm += 1
            return outputs
        if self.graph is None:  # capture (records, runs nothing), then replay this batch
            self.optimizer.zero_grad(set_to_none=True)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.outputs = self._train(x, y)
        self.graph.replay()
        return self.outputs



def capture_body(model, regularizer, options):
    """The captured step up to its loss: mix, forward, the mixed loss (``CapturedStep`` adds the rest)."""
    def body(images, targets):
        batch = regularizer(images, targets)
        with options.autocast():
            logits = model(options.layout(batch.inputs))
        return batch, logits, loss_function(options.loss)(logits.float(), batch, options.label_smoothing)

    return body
