"""The picture an optimisation starts from: the feed-forward engines' result for the painting.

A feed-forward pass already has the painting's colours and strokes laid over the photo's
structure, so the optimiser only refines it: a few L-BFGS steps at the output size reach a
lower style distance than hundreds of steps climbing the ladder from the photo
(docs/gatys-quick.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from restyle.engines.base import Engine
from restyle.engines.registry import painting_engine
from restyle.imaging import resize_tensor


class EngineSource(Protocol):
    """What gives the engines their loaded models (`restyle.engines.holder.Engines`)."""

    def get(self, name: str, setup: Any = None) -> Engine: ...


FirstPass = Callable[
    [torch.Tensor, Sequence[torch.Tensor], Sequence[float], tuple[int, int]], torch.Tensor
]
"""(content (1, 3, H, W), paintings, blend weights, (h, w)) → a (1, 3, h, w) start in [0, 1]."""


@torch.no_grad()
def feed_forward_start(
    engines: EngineSource,
    content: torch.Tensor,
    paintings: Sequence[torch.Tensor],
    blend: Sequence[float],
    size: tuple[int, int],
) -> torch.Tensor:
    """The painting feed-forward engine's result at `size` (a blend's in its weights), on the
    content's device; the photo itself where this installation has no such engine.

    A zoo style's painting gets the same picture as its trained style would: every zoo style
    ships the arbitrary pass with the painting's signals (docs/model-zoo.md).
    """
    spec = painting_engine(feed_forward=True)
    if spec is None:
        return resize_tensor(content, size)
    engine = engines.get(spec.name)
    options = spec.options(size=max(size))
    result = engine.run(content, list(paintings), options, style_blend=list(blend))
    result = result.to(content.device, torch.float32)
    if tuple(result.shape[-2:]) != size:
        result = resize_tensor(result, size)
    return result.clamp(0.0, 1.0)
