"""A clip's frames through an engine: the network built once, frames run in batches.

`frame_stylizer` returns a function from a batch of frames (B, 3, H, W) to finished stylized
frames. The feed-forward engines hand over their per-style runner (`FastEngine.stylizer`,
`ArbitraryEngine.stylizer`), so the style pass and the ONNX export happen once per clip and
every batch is one forward pass; what cannot run that way (gatys, MicroAST's per-photo
`style_mix`) goes through `stylize_tensor` frame by frame with the same engines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from restyle.api import finish, stylize_tensor
from restyle.engines.holder import Engines
from restyle.engines.registry import EngineSpec
from restyle.imaging import DEFAULT_LIMITS, ImageInput, ImageLimits, as_tensor

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
    if spec.feed_forward:
        engine = engines.feed_forward(spec.name, setup_values)
        inputs = (
            list(styles)
            if spec.styles == "trained"
            else [as_tensor(s, limits=limits) for s in styles]
        )
        prepared = engine.prepare(inputs, weights, engine_options)
        if prepared is not None:
            stylize = prepared

            def run(frames: torch.Tensor) -> torch.Tensor:
                return finish(stylize(frames), frames, post)

            return run
    return _one_by_one(spec, styles, weights, options, engines=engines, limits=limits)


def _one_by_one(
    spec: EngineSpec,
    styles: Sequence[ImageInput],
    weights: Sequence[float] | None,
    options: dict[str, Any],
    *,
    engines: Engines,
    limits: ImageLimits,
) -> FrameStylizer:
    # Frames arrive at the size asked for: the engine keeps each frame's own size (its `size`
    # option's "own size" value: none where the option takes it, else 0).
    per_frame = {k: v for k, v in options.items() if k != "size"}
    size = next(o for o in spec.engine_option_specs() if o.name == "size")
    if size.nullable:
        per_frame["size"] = None

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
