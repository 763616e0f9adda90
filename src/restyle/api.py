"""`restyle.stylize`: the library's front door, shared by the CLI and the service.

Inputs of any kind become tensors here, the engine named by `method` runs, and the shared
post-processing (colour preservation, strength, output size) finishes the image. Engines come
from an `Engines` holder: the caller's (the service's workers pass theirs), else one per
device kept for the process, so a loop of one-line calls loads each model once.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from restyle import zoo
from restyle.color import match_color_mean_cov, match_histogram
from restyle.devices import resolve_device
from restyle.engines.choice import choose_engine
from restyle.engines.holder import Engines
from restyle.engines.registry import ENGINES, EngineSpec, engine_spec, trained_engine
from restyle.errors import InvalidParameterError
from restyle.imaging import (
    DEFAULT_LIMITS,
    ImageInput,
    ImageLimits,
    as_tensor,
    resize_tensor,
    tensor_to_image,
)
from restyle.options import normalise_weights
from restyle.postprocess import postprocess
from restyle.postprocess_config import PostprocessConfig
from restyle.progress import ProgressCallback
from restyle.regions import MAX_REGIONS, composite, feather, load_mask

METHODS = tuple(ENGINES)
"""The engines: `gatys` (optimisation), `fast` (a trained network per style), `arbitrary`."""
AUTO = "auto"


def stylize(
    content: ImageInput,
    style: ImageInput | Sequence[ImageInput],
    *,
    method: str = AUTO,
    style_weights: Sequence[float] | None = None,
    init_image: ImageInput | None = None,
    device: str | torch.device | None = None,
    progress: ProgressCallback | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
    engines: Engines | None = None,
    regions: Sequence[Region] = (),
    **options: Any,
) -> Image.Image:
    """Stylize `content` in the style of `style` (one image or several to blend).

    Images may be paths, bytes, binary streams, PIL images or (1, 3, H, W) tensors in [0, 1].
    `method="auto"` picks `fast` when every style names a trained network, else `gatys` where
    it is expected within a minute on the device (a GPU) and `arbitrary` where it is not (see
    `restyle.engines.choice`). For `method="fast"` each style is a trained style's id or
    a checkpoint file instead of an image, and several are blended by averaging their outputs
    with `style_weights`. `method="arbitrary"` takes any painting (several are blended in the
    generated networks' weights).
    `options` are the engine's options and setup (gatys: `GatysOptions`, e.g. `size`,
    `iterations`, `style_weight`, `seed`, and `GatysSetup`, e.g. `precision`; fast:
    `FastOptions` and `FastSetup`, e.g. `size`, `runtime`; arbitrary: `ArbitraryOptions` and
    `ArbitrarySetup`, the fast ones plus `style_size`, `model`) and of `PostprocessConfig`
    (`strength`, `preserve_color`, `color_space`, `output_size`). `engines` is a holder of
    loaded engines to use (default: one per device for the process). `regions`: (mask, style)
    pairs, each a grey mask (white: the region) and the style there (one or several to blend,
    or None to keep the photo), laid over the result in order with feathered edges
    (`restyle.regions`; the feed-forward engines). Returns an 8-bit RGB image.
    """
    return tensor_to_image(
        stylize_tensor(
            content,
            style,
            method=method,
            style_weights=style_weights,
            init_image=init_image,
            device=device,
            progress=progress,
            limits=limits,
            engines=engines,
            regions=regions,
            **options,
        )
    )


def stylize_tensor(
    content: ImageInput,
    style: ImageInput | Sequence[ImageInput],
    *,
    method: str = AUTO,
    style_weights: Sequence[float] | None = None,
    init_image: ImageInput | None = None,
    device: str | torch.device | None = None,
    progress: ProgressCallback | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
    engines: Engines | None = None,
    regions: Sequence[Region] = (),
    **options: Any,
) -> torch.Tensor:
    """Like `stylize`, returning a (1, 3, H, W) float tensor in [0, 1] on the CPU.

    Keeps full precision for 16-bit output.
    """
    styles: list[ImageInput] = list(style) if isinstance(style, list | tuple) else [style]  # type: ignore[list-item]
    if not styles:
        raise InvalidParameterError("style: at least one style is needed")
    holder = engines if engines is not None else default_engines(device)
    content_t = as_tensor(content, limits=limits)
    if method == AUTO:
        hw = (int(content_t.shape[-2]), int(content_t.shape[-1]))
        method = choose_method(styles, options=options, content_hw=hw, device=holder.device)
    if regions:
        one = functools.partial(
            stylize_tensor, content_t, method=method, device=device, progress=progress,
            limits=limits, engines=holder, **options,
        )  # fmt: skip
        return _by_region(one, style, style_weights, regions, content_t, method, limits)
    spec = engine_spec(method)
    setup_values, engine_options, post = spec.split(options)
    weights = normalise_weights(style_weights, len(styles))
    engine = holder.configured(spec.name, setup_values)
    style_inputs = _style_inputs(spec, styles, content_t, post, limits)
    extra: dict[str, Any] = {}
    if init_image is not None:
        if not spec.takes_init_image:
            raise InvalidParameterError(
                f"init_image: the {spec.name} engine does not start from an image"
            )
        extra["init_image"] = as_tensor(init_image, limits=limits)
    stylized = engine.run(
        content_t, style_inputs, engine_options, style_blend=weights, callback=progress, **extra
    )
    return finish(stylized, content_t, post)


Region = tuple[ImageInput, "ImageInput | Sequence[ImageInput] | None"]
"""A mask (a grey image: white is the region) and the style there (None: the photo)."""


def _by_region(
    one: Any,
    style: ImageInput | Sequence[ImageInput],
    style_weights: Sequence[float] | None,
    regions: Sequence[Region],
    content: torch.Tensor,
    method: str,
    limits: ImageLimits,
) -> torch.Tensor:
    """The base style's result with each region's result laid over it through its feathered
    mask (`restyle.regions`); `one(style, style_weights=...)` stylizes the whole photo once."""
    if not engine_spec(method).feed_forward:
        raise InvalidParameterError(
            f"regions: the {method} engine's masked styles are not built yet; use a one-pass "
            "engine (fast, arbitrary) for styles by region"
        )
    if len(regions) > MAX_REGIONS:
        raise InvalidParameterError(f"regions: at most {MAX_REGIONS}, got {len(regions)}")
    base = one(style, style_weights=style_weights)
    size = (int(base.shape[-2]), int(base.shape[-1]))
    layers = []
    for index, (mask_source, region_style) in enumerate(regions, start=1):
        mask, warning = load_mask(mask_source, size, name=f"region {index}'s mask", limits=limits)
        if warning:
            warnings.warn(warning, RegionWarning, stacklevel=3)
        image = resize_tensor(content, size) if region_style is None else one(region_style)
        layers.append((feather(mask), image))
    return composite(base, layers)


class RegionWarning(UserWarning):
    """A region's mask was stretched to the output's aspect ratio."""


def stylize_batch(
    contents: Sequence[ImageInput],
    style: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
    engines: Engines | None = None,
    **options: Any,
) -> list[torch.Tensor]:
    """Several photos in one trained style (the fast engine), as few forward passes as possible.

    Each result equals `stylize_tensor(photo, style, method="fast", **options)`.
    """
    spec = trained_engine()
    setup_values, engine_options, post = spec.split(options)
    holder = engines if engines is not None else default_engines(device)
    engine = holder.batcher(spec.name, setup_values)
    originals = [as_tensor(c, limits=limits) for c in contents]
    outputs = engine.run_batch(originals, style, engine_options)
    return [finish(out, original, post) for out, original in zip(outputs, originals, strict=True)]


def finish(stylized: torch.Tensor, content: torch.Tensor, post: PostprocessConfig) -> torch.Tensor:
    """The shared post-processing of every engine's output, on the CPU."""
    height, width = stylized.shape[-2:]
    content_at_output = resize_tensor(content.to(stylized.device), (height, width))
    return postprocess(stylized, content_at_output, post).cpu()


@functools.cache
def _default_engines(device: str) -> Engines:
    return Engines(device=device)


def default_engines(device: str | torch.device | None = None) -> Engines:
    """The process's holder for `device` (what one-line `stylize` calls use)."""
    return _default_engines(str(resolve_device(device)))


def _style_inputs(
    spec: EngineSpec,
    styles: list[ImageInput],
    content: torch.Tensor,
    post: PostprocessConfig,
    limits: ImageLimits,
) -> list[Any]:
    if spec.styles == "trained":  # ids and checkpoint paths: the engine checks them
        return [os.fspath(s) if isinstance(s, os.PathLike) else s for s in styles]
    paintings = [as_tensor(_painting(s), limits=limits) for s in styles]
    if spec.recolours_paintings:
        return recolor_styles(paintings, content, post.preserve_color)
    return paintings


def _painting(style: ImageInput) -> ImageInput:
    """A zoo style's name stands for its painting (one namespace); anything else is an image."""
    if isinstance(style, str) and not os.path.exists(style):
        return zoo.painting_of(style) or style
    return style


def choose_method(styles: Sequence[ImageInput], **context: Any) -> str:
    """The engine `method="auto"` runs for `styles` (`restyle.engines.choice.choose_engine`:
    `fast` for trained styles; for paintings `gatys` where it is quick on the device, else
    `arbitrary`). `context`: `options`, `content_hw`, `device`, `video`."""
    return choose_engine(styles, **context).method


def recolor_styles(
    styles: list[torch.Tensor], content: torch.Tensor, preserve_color: str
) -> list[torch.Tensor]:
    """For the colour-matching modes, give each style the photo's colours before stylizing.

    This is Gatys et al. 2017's colour-histogram method: the style's textures are learnt in the
    photo's palette, so the output needs little recolouring afterwards (post-processing still
    applies the same matching, which then only corrects drift). "luminance" and "none" leave
    the styles alone.
    """
    if preserve_color == "mean_cov":
        return [match_color_mean_cov(style, content) for style in styles]
    if preserve_color == "histogram":
        return [match_histogram(style, content) for style in styles]
    return styles
