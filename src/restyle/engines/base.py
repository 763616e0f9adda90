"""What every engine is: built once with a setup on a device, then run many times.

What an engine can do beyond `run` is declared in the registry (`EngineSpec.feed_forward`,
`.batches`, ...) and typed here, so a caller asks the capability, never the engine's name, and
gets the typed engine from the holder (`Engines.feed_forward`, `Engines.batcher`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from restyle.progress import ProgressCallback

FrameRunner = Callable[[torch.Tensor], torch.Tensor]
"""(B, 3, H, W) frames in [0, 1], already at their size → (B, 3, H', W') stylized frames."""


class Engine(Protocol):
    """An engine object (`GatysEngine`, `FastEngine`, `ArbitraryEngine`).

    Built with its *setup* (device, precision, weights) and called with per-call *options*:
    (1, 3, H, W) content in [0, 1] in, the stylized (1, 3, h, w) tensor in [0, 1] out,
    progress through `callback`. Styles are painting tensors or, for the fast engine, trained
    style ids / checkpoint paths (see `EngineSpec.styles`). Engines are safe to call from
    several threads: per-call state lives in the call, shared caches are locked.
    """

    name: str
    setup: Any
    device: torch.device

    def run(
        self,
        content: torch.Tensor,
        styles: Sequence[Any],
        options: Any = None,
        *,
        style_blend: Sequence[float] | None = None,
        callback: ProgressCallback | None = None,
    ) -> torch.Tensor: ...


class FeedForwardEngine(Engine, Protocol):
    """An engine whose styles become a network prepared once (`EngineSpec.feed_forward`)."""

    def prepare(
        self, styles: Sequence[Any], weights: Sequence[float] | None, options: Any
    ) -> FrameRunner | None:
        """A runner for a clip's frames: the style's network made (and checked) once, each
        batch one pass at the frames' own size; None where these options need a network per
        frame (the engine's `run` then takes each frame)."""
        ...

    def live_model(self, styles: Sequence[Any]) -> Path:
        """The styles' network exported to ONNX (float32, cached on disk by its weights'
        digest): what the browser's live mode runs on camera frames."""
        ...


class BatchEngine(Engine, Protocol):
    """An engine that runs several photos in one style as one pass (`EngineSpec.batches`)."""

    def run_batch(
        self, contents: Sequence[torch.Tensor], style: Any, options: Any = None
    ) -> list[torch.Tensor]: ...
