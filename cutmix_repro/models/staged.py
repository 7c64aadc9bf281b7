"""The one structure every model exposes: stem → stages → head.

Feature-level mixing (paper §4, Figure 3 right) needs to reach a feature map inside any
network at the same place: index 0 = the input, 1 = after the stem, 2 = after stage 1,
3 = after stage 2, 4 = after stage 3 (and, for the 4-stage ImageNet ResNets, 5 = after
stage 4). ``forward(x, mix_layer, mix_fn)`` calls ``mix_fn`` on that feature map.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn


class StagedNet(nn.Module):
    """Base class: subclasses give ``feature_blocks()`` (stem first) and ``forward_head``."""

    def feature_blocks(self) -> Sequence[Callable[[Tensor], Tensor]]:
        raise NotImplementedError

    def forward_head(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def compile_stages(self, **options) -> None:
        """``torch.compile`` the stem and each stage in place. The few lines between them, where
        feature-level mixing happens, stay eager: a new ``mix_fn`` every batch recompiles nothing."""
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
        return self.forward_head(x)
