"""What every engine is: built once with a setup on a device, then run many times."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch

from restyle.progress import ProgressCallback


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
