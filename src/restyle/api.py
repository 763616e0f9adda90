"""`restyle.stylize`: the library's front door, shared by the CLI and (later) the service."""

from __future__ import annotations

import dataclasses
import functools
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import torch
from PIL import Image

from restyle import zoo
from restyle.color import match_color_mean_cov, match_histogram
from restyle.devices import resolve_device
from restyle.engines.arbitrary_config import ArbitraryConfig
from restyle.engines.fast_config import FastConfig
from restyle.engines.gatys import GatysEngine
from restyle.engines.gatys_config import GatysConfig
from restyle.errors import InvalidParameterError
from restyle.imaging import (
    DEFAULT_LIMITS,
    ImageLimits,
    image_to_tensor,
    load_image,
    resize_tensor,
    resize_tensor_to_long_side,
)
from restyle.imaging import tensor_to_image as _tensor_to_image
from restyle.postprocess import PostprocessConfig, postprocess
from restyle.progress import ProgressCallback

ImageInput = str | os.PathLike[str] | bytes | BinaryIO | Image.Image | torch.Tensor

METHODS = ("gatys", "fast", "arbitrary")
"""The engines: `gatys` (optimisation), `fast` (a trained network per style), `arbitrary`."""
AUTO = "auto"

_ENGINE_CONFIGS: dict[str, type[GatysConfig] | type[FastConfig]] = {
    "gatys": GatysConfig,
    "fast": FastConfig,
    "arbitrary": ArbitraryConfig,
}
_POSTPROCESS_FIELDS = {f.name for f in dataclasses.fields(PostprocessConfig)}


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
    **options: Any,
) -> Image.Image:
    """Stylize `content` in the style of `style` (one image or several to blend).

    Images may be paths, bytes, binary streams, PIL images or (1, 3, H, W) tensors in [0, 1].
    `method="auto"` picks `fast` when every style names a trained network (see
    `choose_method`), else `gatys`. For `method="fast"` each style is a trained style's id or
    a checkpoint file instead of an image, and several are blended by averaging their outputs
    with `style_weights`. `method="arbitrary"` takes any painting (several are blended in the
    generated networks' weights).
    `options` are fields of the engine's config (gatys: `GatysConfig`, e.g. `size`,
    `iterations`, `style_weight`, `seed`; fast: `FastConfig`, e.g. `size`, `runtime`,
    `tile_size`; arbitrary: `ArbitraryConfig`, the fast options plus `model`, `style_size`) and of
    `PostprocessConfig` (`strength`, `preserve_color`, `color_space`,
    `output_size`). Returns an 8-bit RGB image.
    """
    return _tensor_to_image(
        stylize_tensor(
            content,
            style,
            method=method,
            style_weights=style_weights,
            init_image=init_image,
            device=device,
            progress=progress,
            limits=limits,
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
    **options: Any,
) -> torch.Tensor:
    """Like `stylize`, returning a (1, 3, H, W) float tensor in [0, 1] on the CPU.

    Keeps full precision for 16-bit output.
    """
    styles: list[ImageInput] = list(style) if isinstance(style, list | tuple) else [style]  # type: ignore[list-item]
    if not styles:
        raise InvalidParameterError("style: at least one style is needed")
    if method == AUTO:
        method = choose_method(styles)
    if method not in METHODS:
        raise InvalidParameterError(
            f"method: unknown engine {method!r}; available: {AUTO}, {', '.join(METHODS)}"
        )
    engine_config, post_config = split_options(options, method=method)
    content_t = as_tensor(content, limits=limits)
    if isinstance(engine_config, ArbitraryConfig):
        stylizer = _arbitrary_stylizer(engine_config, device)
        stylizer.set_style(styles, weights=_blend_weights(style_weights, len(styles)))
        stylized = stylizer.stylize(content_t, callback=progress)
    elif isinstance(engine_config, FastConfig):
        stylized = _run_fast(content_t, styles, style_weights, engine_config, device, progress)
    else:
        stylized = _run_gatys(
            content_t,
            styles,
            style_weights,
            init_image,
            engine_config,
            post_config,
            device,
            progress,
            limits,
        )
    output_hw = (stylized.shape[-2], stylized.shape[-1])
    content_at_output = resize_tensor(content_t.to(stylized.device), output_hw)
    return postprocess(stylized, content_at_output, post_config).cpu()


def stylize_batch(
    contents: Sequence[ImageInput],
    style: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
    **options: Any,
) -> list[torch.Tensor]:
    """Several photos in one trained style (the fast engine), as few forward passes as possible.

    Photos whose resized shapes are equal run as one batch (what a GPU worker does with
    concurrent requests); each result equals `stylize_tensor(photo, style, method="fast",
    **options)`. Images too large to run whole are tiled one by one.
    """
    engine_config, post_config = split_options(options, method="fast")
    assert isinstance(engine_config, FastConfig)
    # Resized here, once, so that equal shapes can be stacked; the stylizer then keeps them.
    stylizer = _fast_stylizer(style, dataclasses.replace(engine_config, size=0), device)
    originals = [as_tensor(c, limits=limits) for c in contents]
    inputs = [
        resize_tensor_to_long_side(t, engine_config.size) if engine_config.size else t
        for t in originals
    ]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, tensor in enumerate(inputs):
        whole = tensor.shape[-2] * tensor.shape[-1] <= stylizer.tile_size**2
        groups.setdefault(tuple(tensor.shape) if whole else (i,), []).append(i)
    results: list[torch.Tensor] = [torch.empty(0)] * len(inputs)
    for members in groups.values():
        stylized = stylizer.stylize(torch.cat([inputs[i] for i in members]))
        for row, i in enumerate(members):
            out = stylized[row : row + 1]
            content_at_output = resize_tensor(originals[i], (out.shape[-2], out.shape[-1]))
            results[i] = postprocess(out, content_at_output, post_config).cpu()
    return results


def choose_method(styles: Sequence[ImageInput]) -> str:
    """`fast` when every style is a trained network (a zoo id or a .safetensors file), else `gatys`.

    A painting's image always goes to `gatys`, which takes any style; a trained style only
    exists for `fast`.
    """

    def trained(style: ImageInput) -> bool:
        if isinstance(style, os.PathLike):
            style = os.fspath(style)
        if not isinstance(style, str):
            return False
        if style.endswith(".safetensors"):
            return True
        return not Path(style).exists() and zoo.find(zoo.split_spec(style)[0]) is not None

    return "fast" if all(trained(s) for s in styles) else "gatys"


def _run_gatys(
    content: torch.Tensor,
    styles: list[ImageInput],
    style_weights: Sequence[float] | None,
    init_image: ImageInput | None,
    config: GatysConfig,
    post_config: PostprocessConfig,
    device: str | torch.device | None,
    progress: ProgressCallback | None,
    limits: ImageLimits,
) -> torch.Tensor:
    style_ts = recolor_styles(
        [as_tensor(s, limits=limits) for s in styles], content, post_config.preserve_color
    )
    init_t = as_tensor(init_image, limits=limits) if init_image is not None else None
    engine = GatysEngine(config, device=resolve_device(device))
    return engine.run(
        content, style_ts, style_blend=style_weights, init_image=init_t, callback=progress
    )


def _run_fast(
    content: torch.Tensor,
    styles: list[ImageInput],
    style_weights: Sequence[float] | None,
    config: FastConfig,
    device: str | torch.device | None,
    progress: ProgressCallback | None,
) -> torch.Tensor:
    for s in styles:
        if not isinstance(s, str | os.PathLike):
            raise InvalidParameterError(
                "style: the fast engine takes a trained style's id or a checkpoint path, "
                f"not {type(s).__name__}"
            )
    weights = _blend_weights(style_weights, len(styles))
    stylized: torch.Tensor | None = None
    for s, weight in zip(styles, weights, strict=True):
        if weight == 0:
            continue
        stylizer = _fast_stylizer(s, config, device)  # type: ignore[arg-type]
        part = stylizer.stylize(content, callback=progress) * weight
        stylized = part if stylized is None else stylized + part
    assert stylized is not None
    return stylized


def _fast_stylizer(
    style: str | os.PathLike[str], config: FastConfig, device: str | torch.device | None
) -> Any:
    """A loaded FastStylizer, reused across calls: a batch of photos loads each style once."""
    from restyle.engines.fast import resolve_model

    path = resolve_model(style).resolve()
    # Keyed on the file's identity (a retrained file at the same path is reloaded).
    key = (str(path), path.stat().st_mtime_ns, config, str(resolve_device(device)))
    return _load_fast_stylizer(*key)


@functools.lru_cache(maxsize=8)
def _load_fast_stylizer(path: str, _mtime_ns: int, config: FastConfig, device: str) -> Any:
    from restyle.engines.fast import FastStylizer

    return FastStylizer(path, config=config, device=device)


@functools.lru_cache(maxsize=2)
def _arbitrary_stylizer(config: ArbitraryConfig, device: str | torch.device | None) -> Any:
    """One loaded MetaNet per (settings, device): it caches the networks it writes."""
    from restyle.engines.arbitrary import ArbitraryStylizer

    return ArbitraryStylizer(config=config, device=device)


def _blend_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count or any(not w >= 0 for w in weights) or sum(weights) <= 0:
        raise InvalidParameterError(
            f"style_weights: {count} non-negative weights with a positive sum expected, "
            f"got {list(weights)}"
        )
    total = float(sum(weights))
    return [float(w) / total for w in weights]


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


def split_options(
    options: dict[str, Any], *, method: str = "gatys"
) -> tuple[GatysConfig | FastConfig, PostprocessConfig]:
    """Route keyword options to `method`'s engine config and the post-processing config."""
    if method not in _ENGINE_CONFIGS:
        raise InvalidParameterError(
            f"method: unknown engine {method!r}; available: {', '.join(METHODS)}"
        )
    config_class = _ENGINE_CONFIGS[method]
    engine_fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = set(options) - engine_fields - _POSTPROCESS_FIELDS
    if unknown:
        raise InvalidParameterError(
            f"unknown option(s) {sorted(unknown)} for the {method} engine; engine options: "
            f"{sorted(engine_fields)}, post-processing options: {sorted(_POSTPROCESS_FIELDS)}"
        )
    engine = config_class(**{k: v for k, v in options.items() if k in engine_fields})
    post = PostprocessConfig(**{k: v for k, v in options.items() if k in _POSTPROCESS_FIELDS})
    return engine, post


def as_tensor(image: ImageInput, *, limits: ImageLimits = DEFAULT_LIMITS) -> torch.Tensor:
    """Any accepted image input as a (1, 3, H, W) float32 tensor in [0, 1]."""
    if isinstance(image, torch.Tensor):
        if image.ndim == 3:
            image = image.unsqueeze(0)
        if image.ndim != 4 or image.shape[:2] != (1, 3):
            raise InvalidParameterError(
                f"image tensor: expected shape (1, 3, H, W), got {tuple(image.shape)}"
            )
        return image.float().clamp(0.0, 1.0)
    if isinstance(image, Image.Image):
        buffer = _pil_to_png_bytes(image)
        return image_to_tensor(load_image(buffer, limits=limits))
    if isinstance(image, str | os.PathLike):
        image = Path(image)
    return image_to_tensor(load_image(image, limits=limits))


def _pil_to_png_bytes(image: Image.Image) -> bytes:
    # Route PIL images through the same loader as files, so limits and mode conversion
    # (alpha, palette, 16-bit) behave identically whatever the caller passes.
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
