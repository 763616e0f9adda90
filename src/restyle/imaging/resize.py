"""Resizing images and image tensors, keeping the aspect ratio and the [0, 1] range."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from PIL import Image

from restyle.errors import InvalidParameterError
from restyle.imaging.limits import check_positive_int


def resize_to_long_side(img: Image.Image, size: int) -> Image.Image:
    """Scale `img` (up or down, keeping its aspect ratio) so that its longer side is `size`."""
    check_positive_int("size", size)
    scale = size / max(img.size)
    return _resize(img, scale)


def resize_to_area(img: Image.Image, pixels: int) -> Image.Image:
    """Scale `img`, keeping its aspect ratio, to about `pixels` pixels in all.

    Used to give a style image the content image's area, so that brush strokes come out at
    the same scale whatever the style image's resolution.
    """
    check_positive_int("pixels", pixels)
    width, height = img.size
    return _resize(img, math.sqrt(pixels / (width * height)))


def resize_tensor(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a (B, C, H, W) image tensor to `size` = (height, width), kept in [0, 1].

    Bicubic with antialiasing, so downscaling does not alias; bicubic overshoots at sharp
    edges, hence the clamp.
    """
    if t.ndim != 4 or not t.is_floating_point():
        raise InvalidParameterError(
            f"t must be a floating-point (B, C, H, W) tensor, got {t.dtype} {tuple(t.shape)}"
        )
    if len(size) != 2:
        raise InvalidParameterError(f"size must be (height, width), got {size!r}")
    for name, value in zip(("height", "width"), size, strict=True):
        check_positive_int(name, value)
    # Antialiased bicubic is implemented for float32/float64 only on some devices: compute in
    # float32 for half types and cast back.
    work = t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
    out = F.interpolate(work, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0, 1).to(t.dtype)


def resize_tensor_to_long_side(t: torch.Tensor, size: int) -> torch.Tensor:
    """`resize_tensor` to the (height, width) whose longer side is `size`, keeping the aspect."""
    check_positive_int("size", size)
    height, width = t.shape[-2:]
    scale = size / max(height, width)
    return resize_tensor(t, (max(1, round(height * scale)), max(1, round(width * scale))))


def _resize(img: Image.Image, scale: float) -> Image.Image:
    width, height = img.size
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS)
