"""The one structure every model exposes: ``stem`` → ``stages`` → ``head``.

Every head here is global average pooling then a linear classifier, with at most a few layers before
the pooling (PyramidNet's BN-ReLU): ``head_parts`` names them, which is what a class activation map
(``cutmix_repro.cam``) needs.

Feature-level mixing (paper §4, Figure 3 right) needs to reach a feature map inside any
network at the same place: index 0 = the input, 1 = after the stem, 2 = after stage 1,
3 = after stage 2, 4 = after stage 3 (and, for the 4-stage ImageNet ResNets, 5 = after
stage 4). ``forward(x, mix_layer, mix_fn)`` calls ``mix_fn`` on that feature map.

The head runs in fp32 even under bf16/fp16 autocast: its cost is negligible, and the logits every
metric is computed from are then not rounded to 8 bits of mantissa (in bf16, about 1% of rows of
random logits have a tied top-1). ``forward_features`` (class activation maps) likewise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn


class StagedNet(nn.Module):
    """Base class: subclasses define ``stem``, ``stages`` (a sequence), ``head`` and ``arch_name``
    (the architecture by its real shape, e.g. ``pyramidnet200``, ``resnet110``, ``resnet50``)."""

    arch_name: str
    stem: Callable[[Tensor], Tensor]
    stages: Sequence[Callable[[Tensor], Tensor]]
    head: Callable[[Tensor], Tensor]

    def feature_blocks(self) -> list[Callable[[Tensor], Tensor]]:
        """The blocks whose outputs are feature indices 1, 2, …: the stem, then each stage."""
        return [self.stem, *self.stages]

    def head_parts(self) -> tuple[Callable[[Tensor], Tensor], nn.Linear]:
        """(what the head applies before global average pooling, its linear classifier):
        ``head(x) == classifier(before_pool(x).mean((2, 3)))``."""
        raise NotImplementedError

    def forward_features(self, x: Tensor) -> Tensor:
        """The feature map the head pools (after the head's layers before the pooling)."""
        for block in self.feature_blocks():
            x = block(x)
        with torch.autocast(x.device.type, enabled=False):
            return self.head_parts()[0](x.float())

    def compile_stages(self, **options) -> None:
        """``torch.compile`` the stem and each stage in place. The few lines between them, where
        feature-level mixing happens, stay eager: a new ``mix_fn`` every batch recompiles nothing.
        (``trainer.compile`` does this for feature-level mixing, and compiles the whole model otherwise:
        ``cutmix_repro.engine.compiled``.)"""
        for block in self.feature_blocks():
            if isinstance(block, nn.Module):
                block.compile(**options)

    def forward(
        self,
        x: Tensor,
        mix_layer: int | None = None,
        mix_fn: Callable[[Tensor], Tensor] | None = None,
    ) -> Tensor:
        if mix_layer == 0:
            x = mix_fn(x)
        for index, block in enumerate(self.feature_blocks(), start=1):
            x = block(x)
            if index == mix_layer:
                x = mix_fn(x)
        with torch.autocast(x.device.type, enabled=False):
            return self.head(x.float())
