"""Pixels between forms: any decoded image to upright 8-bit sRGB, and 8-bit RGB to and from a
(1, 3, H, W) tensor in [0, 1]."""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import cache

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps

from restyle.errors import InvalidParameterError
from restyle.imaging.limits import DECODER_ERRORS

_WHITE = (255, 255, 255)


def image_to_tensor(
    img: Image.Image,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Turn an 8-bit RGB image into a (1, 3, H, W) tensor in [0, 1]."""
    if img.mode != "RGB":
        raise InvalidParameterError(
            f"img must be an RGB image, got mode {img.mode!r}; read files with load_image"
        )
    if not dtype.is_floating_point:
        raise InvalidParameterError(f"dtype must be a floating-point dtype, got {dtype}")
    pixels = torch.from_numpy(np.array(img, dtype=np.uint8))  # (H, W, 3), a writable copy
    # Move the uint8 data (4x smaller than float) first; divide in float32 so that
    # bfloat16/float16 results are rounded once, from exact values.
    if device is not None:
        pixels = pixels.to(device)
    pixels = pixels.permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W)
    return pixels.to(torch.float32).div_(255).to(dtype).contiguous()


def tensor_to_image(t: torch.Tensor) -> Image.Image:
    """Turn a (1, 3, H, W) or (3, H, W) tensor in [0, 1] into an 8-bit RGB image.

    Values are clamped to [0, 1] and rounded to the nearest 8-bit level.
    """
    chw = as_chw(t)
    pixels = chw.mul(255).round_().to(torch.uint8).permute(1, 2, 0)  # (H, W, 3)
    return Image.fromarray(pixels.contiguous().numpy())


# --- conversion to 8-bit sRGB ------------------------------------------------------------------


_ORIENTATION = 0x0112  # the EXIF tag


def to_srgb(img: Image.Image, *, reduce_to: int | None = None) -> Image.Image:
    """A decoded image (any mode, profile, orientation) as upright 8-bit sRGB `RGB`, alpha
    composited over white; `reduce_to`: shrunk by a whole factor first (see `load_image`)."""
    icc = img.info.get("icc_profile")
    upright: Image.Image | None = img
    if img.getexif().get(_ORIENTATION, 1) != 1:  # else exif_transpose would copy the image
        upright = ImageOps.exif_transpose(img)
    assert upright is not None  # only None with in_place=True
    working = _to_working_mode(_to_8bit(upright))
    if reduce_to is not None:  # before the colour conversions, which copy the image
        working = _reduce(working, 2 * reduce_to)
    converted = _apply_icc(working, icc)
    if converted.mode == "RGBA":
        # Transparent pixels keep whatever colour the encoder left behind, usually black:
        # dropping alpha would paint transparent areas black. White is what a viewer shows.
        background = Image.new("RGBA", converted.size, (*_WHITE, 255))
        converted = Image.alpha_composite(background, converted)
    return converted.convert("RGB")


def _to_8bit(img: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit and float greyscale into 8-bit `L`/`LA` (scaled, never clipped).

    A band of rows at a time, in the image's own narrow dtype and float32: a whole-image array
    of a small but 40 Mpx upload, let alone the float64 copies of a vectorised formula, costs
    hundreds of megabytes; the 8-bit result costs one byte a pixel.
    """
    if img.mode not in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return img
    if img.mode == "F":
        # Float files hold [0, 1] by convention; Pillow's own convention is [0, 255].
        peak = max(float(np.nanmax(band, initial=0.0)) for _, band in _row_bands(img))
        scale = 1.0 if peak <= 1.0 else 255.0
    elif img.mode == "I" and max(int(band.max(initial=0)) for _, band in _row_bands(img)) > 65535:
        scale = float(2**31 - 1)  # genuinely 32-bit data
    else:
        scale = 65535.0  # 16-bit data, whichever of Pillow's 16/32-bit modes it arrived in
    factor = np.float32(255.0 / scale)
    grey = np.empty((img.height, img.width), dtype=np.uint8)
    transparent = img.info.get("transparency")
    alpha = np.full_like(grey, 255) if isinstance(transparent, int) else None
    for top, band in _row_bands(img):
        scaled = np.nan_to_num(band.astype(np.float32) * factor)
        grey[top : top + len(band)] = np.rint(scaled).clip(0, 255)
        if alpha is not None:  # a 16-bit PNG's tRNS colour, in the original units
            alpha[top : top + len(band)][band == transparent] = 0
    luma = Image.fromarray(grey)
    if alpha is not None:
        return Image.merge("LA", (luma, Image.fromarray(alpha)))
    return luma


_BAND_VALUES = 1 << 20  # pixels per band of `_row_bands`: a few megabytes in float32


def _row_bands(img: Image.Image) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, (rows, W) array) bands of a one-channel image, each read from a crop: a
    whole-image `np.asarray` would hold the pixels twice over (Pillow's bytes, then the array)."""
    rows = max(1, _BAND_VALUES // max(1, img.width))
    for top in range(0, img.height, rows):
        bottom = min(img.height, top + rows)
        yield top, np.asarray(img.crop((0, top, img.width, bottom)))


def _to_working_mode(img: Image.Image) -> Image.Image:
    """Reduce every 8-bit mode to L, RGB or CMYK (which ICC profiles describe) or RGBA."""
    has_alpha = img.mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in img.info
    if has_alpha:
        return img.convert("RGBA")
    if img.mode in ("L", "RGB", "CMYK"):
        return img
    if img.mode == "1":
        return img.convert("L")
    return img.convert("RGB")  # P, YCbCr, RGBX, HSV, LAB


def _apply_icc(img: Image.Image, icc: object) -> Image.Image:
    """Convert to sRGB through the embedded profile; plain conversion if it is absent or bad."""
    target = "RGBA" if img.mode == "RGBA" else "RGB"
    if isinstance(icc, bytes) and icc:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(img, profile, _srgb(), outputMode=target)
        except (ImageCms.PyCMSError, *DECODER_ERRORS):
            # A broken profile, or one that does not match the pixels (an RGB profile on a
            # greyscale image): the pixels are still good, so show them unmanaged.
            pass
        else:
            assert converted is not None  # only None with inPlace=True
            return converted
    return img.convert(target)


@cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def as_chw(t: torch.Tensor) -> torch.Tensor:
    """Return a (3, H, W) float32 CPU copy of an image tensor, clamped to [0, 1]."""
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3 or t.shape[0] != 3:
        raise InvalidParameterError(
            f"image tensor must have shape (1, 3, H, W) or (3, H, W), got {tuple(t.shape)}"
        )
    chw = t.detach().to("cpu", torch.float32)
    if not torch.isfinite(chw).all():
        raise InvalidParameterError("image tensor contains NaN or infinite values")
    return chw.clamp(0, 1)


def _reduce(img: Image.Image, long_side: int) -> Image.Image:
    """`img` shrunk by the largest whole factor that keeps its long side >= `long_side`: a box
    filter, exact and cheap, that leaves the final (antialiased) resize to the caller."""
    factor = max(img.size) // long_side
    return img.reduce(factor) if factor >= 2 else img
