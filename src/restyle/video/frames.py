"""A clip's frames through an engine: the network built once, frames run in batches.

`frame_stylizer` returns a function from a batch of frames (B, 3, H, W) to finished stylized
frames. The feed-forward engines hand over their per-style runner (`FastEngine.stylizer`,
`ArbitraryEngine.stylizer`), so the style pass and the ONNX export happen once per clip and
every batch is one forward pass; what cannot run that way (gatys, MicroAST's per-photo
`style_mix`) goes through `stylize_tensor` frame by frame with the same engines.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch

from restyle.api import _setup, finish, stylize_tensor
from restyle.engines.holder import Engines
from restyle.engines.registry import EngineSpec
from restyle.imaging import DEFAULT_LIMITS, ImageInput, ImageLimits, as_tensor
from restyle.options import normalise_weights

FrameStylizer = Callable[[torch.Tensor], torch.Tensor]
"""(B, 3, H, W) frames in [0, 1] → (B, 3, H', W') finished frames in [0, 1], on the CPU."""


def frame_stylizer(
    spec: EngineSpec,
    styles: Sequence[ImageInput],
    weights: Sequence[float] | None,
    options: dict[str, Any],
    *,
    engines: Engines,
    limits: ImageLimits = DEFAULT_LIMITS,
) -> FrameStylizer:
    """The function that stylizes a clip's batches with engine `spec` (see the module doc).

    `options` are the engine's and the post-processing's; frames arrive already at the size
    they are stylized at, so the engine's `size` is not applied again.
    """
    setup_values, engine_options, post = spec.split(options)
    engine: Any = engines.get(spec.name, _setup(spec, engines, setup_values))
    fractions = normalise_weights(weights, len(styles))
    whole = dataclasses.replace(engine_options, size=0)
    stylize: FrameStylizer
    if spec.name == "fast":
        names = [os.fspath(s) if isinstance(s, os.PathLike) else s for s in styles]
        for name, fraction in zip(names, fractions, strict=True):
            if fraction > 0:
                engine.stylizer(name)  # every network loaded once, and errors before frame 1

        def stylize(frames: torch.Tensor) -> torch.Tensor:
            # The engine's own blend of several trained styles (averaged outputs).
            return engine.run(frames, names, whole, style_blend=fractions)  # type: ignore[no-any-return]

    elif spec.name == "arbitrary" and engine_options.style_mix == 1.0:
        paintings = [as_tensor(s, limits=limits) for s in styles]
        runner = engine.stylizer(paintings, fractions, style_size=engine_options.style_size)

        def stylize(frames: torch.Tensor) -> torch.Tensor:
            return runner.stylize(frames, whole)  # type: ignore[no-any-return]

    else:
        return _one_by_one(spec, styles, weights, options, engines=engines, limits=limits)

    def run(frames: torch.Tensor) -> torch.Tensor:
        return finish(stylize(frames), frames, post)

    return run


def _one_by_one(
    spec: EngineSpec,
    styles: Sequence[ImageInput],
    weights: Sequence[float] | None,
    options: dict[str, Any],
    *,
    engines: Engines,
    limits: ImageLimits,
) -> FrameStylizer:
    per_frame = {k: v for k, v in options.items() if k != "size"}
    if spec.name == "gatys":
        per_frame["size"] = None  # frames arrive at the size asked for

    def run(frames: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                stylize_tensor(
                    frames[i : i + 1],
                    list(styles),
                    method=spec.name,
                    style_weights=weights,
                    engines=engines,
                    limits=limits,
                    **per_frame,
                )
                for i in range(frames.shape[0])
            ]
        )

    return run
