"""The post-processing step shared by every engine: colour preservation, strength, output size.

Images are tensors of shape (B, 3, H, W), RGB, float in [0, 1]. `postprocess` takes an engine's
stylized output and the content image it was made from and returns the final image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from restyle.color import (
    check_image,
    compute_dtype,
    luminance_transfer,
    match_color_mean_cov,
    match_histogram,
)
from restyle.errors import InvalidParameterError
from restyle.postprocess_config import ColorSpace, PostprocessConfig, PreserveColor


def _check_strength(strength: object) -> None:
    if (
        isinstance(strength, bool)
        or not isinstance(strength, int | float)
        or not math.isfinite(strength)
        or not 0.0 <= strength <= 1.0
    ):
        raise InvalidParameterError(f"strength must be a number in [0, 1], got {strength!r}")


def _check_pair(content: Tensor, stylized: Tensor) -> None:
    """Both images valid and alike in everything but their height and width."""
    check_image(content, name="content")
    check_image(stylized, name="stylized")
    if content.shape[0] != stylized.shape[0]:
        raise InvalidParameterError(
            f"content and stylized must have the same batch size, "
            f"got {content.shape[0]} and {stylized.shape[0]}"
        )
    if content.device != stylized.device:
        raise InvalidParameterError(
            f"content and stylized must be on the same device, "
            f"got {content.device} and {stylized.device}"
        )


def blend(content: Tensor, stylized: Tensor, *, strength: float) -> Tensor:
    """content + strength * (stylized - content), for images of the same shape.

    Uses `torch.lerp`, which returns `content` exactly at strength 0 and `stylized` exactly at
    strength 1 (the textbook formula can be off by one ulp at 1). Returns the dtype of `stylized`.
    """
    _check_pair(content, stylized)
    _check_strength(strength)
    if content.shape != stylized.shape:
        raise InvalidParameterError(
            f"content and stylized must have the same shape, "
            f"got {tuple(content.shape)} and {tuple(stylized.shape)}"
        )
    dtype = compute_dtype(stylized)
    return torch.lerp(content.to(dtype), stylized.to(dtype), strength).to(stylized.dtype)


def _preserve_color(
    stylized: Tensor, content: Tensor, *, mode: PreserveColor, space: ColorSpace
) -> Tensor:
    if mode == "luminance":
        return luminance_transfer(stylized, content, space=space)
    if mode == "mean_cov":
        return match_color_mean_cov(stylized, content)
    if mode == "histogram":
        return match_histogram(stylized, content)
    return stylized


def postprocess(
    stylized: Tensor, content: Tensor, config: PostprocessConfig | None = None
) -> Tensor:
    """Turn an engine's `stylized` output into the final image, following `config`.

    The steps, in this order:
      1. Resize `stylized` to the content's size if they differ (engines may round sizes to a
         multiple of their stride). Bilinear, which does not overshoot [0, 1]. Every later
         step then compares the two images pixel by pixel.
      2. Colour preservation. It comes before the blend so that the strength slider always
         runs from the content (0) to the finished, colour-preserved stylization (1),
         whatever the colour mode. (Luminance transfer and the blend are both linear in
         the colour space, so the content's chroma survives the blend at every strength.)
      3. Strength blend: content + strength * (stylized - content).
      4. Resize to `output_size` if set (bicubic, antialiased): one resample of the finished
         image, with the colour statistics computed at the working resolution.
      5. Clamp to [0, 1], last because bicubic resampling overshoots at edges.

    Works in float32 or wider and returns the dtype of `stylized`. Raises
    InvalidParameterError if the batch sizes, channels or devices of the two images differ.
    """
    config = PostprocessConfig() if config is None else config
    _check_pair(content, stylized)
    dtype = compute_dtype(stylized)
    out = stylized.to(dtype)  # (B, 3, Hs, Ws)
    base = content.to(dtype)  # (B, 3, H, W)
    if out.shape[-2:] != base.shape[-2:]:
        out = F.interpolate(
            out, size=base.shape[-2:], mode="bilinear", align_corners=False, antialias=True
        )
    out = _preserve_color(out, base, mode=config.preserve_color, space=config.color_space)
    out = blend(base, out, strength=config.strength)
    if config.output_size is not None and out.shape[-2:] != config.output_size:
        out = F.interpolate(
            out, size=config.output_size, mode="bicubic", align_corners=False, antialias=True
        )
    return out.clamp(0.0, 1.0).to(stylized.dtype)
