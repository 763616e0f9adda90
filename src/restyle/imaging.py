"""Image input and output with limits: the one place where pixels enter and leave Restyle.

Every engine, the CLI and the HTTP service read images through `load_image`, so it is written
for hostile uploads: sizes are checked before anything is decoded, Pillow's decompression-bomb
guard stays on, only a short allow-list of formats is parsed, and every failure is one of the
`restyle.errors` types with a message that names the source and the value.

Whatever the input (CMYK, palette, 16-bit greyscale, alpha, an embedded ICC profile, an EXIF
rotation), `load_image` returns an upright 8-bit sRGB `RGB` image, and `image_to_tensor` /
`tensor_to_image` move between that and a (1, 3, H, W) tensor in [0, 1].
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import secrets
import stat
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from restyle.errors import (
    ImageTooLargeError,
    InvalidImageError,
    InvalidParameterError,
    RestyleError,
)

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_PAINTING_ASPECT",
    "SUPPORTED_FORMATS",
    "ImageHeader",
    "ImageInput",
    "ImageLimits",
    "ImageSource",
    "as_tensor",
    "check_output_path",
    "check_painting_shape",
    "encode_image",
    "image_to_tensor",
    "inspect_image",
    "load_image",
    "resize_tensor",
    "resize_tensor_to_long_side",
    "resize_to_area",
    "resize_to_long_side",
    "save_image",
    "tensor_to_image",
]

ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO

# Only these decoders ever see user bytes: each extra Pillow plugin is extra attack surface.
# "MPO" is what Pillow calls a JPEG carrying several pictures (some phone cameras); the JPEG
# decoder opens it, and like every multi-frame image we use its first picture.
SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
_OPENED_FORMATS = frozenset({*SUPPORTED_FORMATS, "MPO"})

# What corrupt or truncated files make Pillow's parsers raise; all become InvalidImageError.
# Beyond the documented ones, fuzzing found TypeError (malformed TIFF tags), and Pillow's own
# fuzz tests list IndexError, KeyError and arithmetic errors. Not a bare `Exception`: that
# would also hide bugs in this module.
_DECODER_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    struct.error,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ArithmeticError,
)

_WHITE = (255, 255, 255)


def _check_positive_int(name: str, value: object) -> None:
    # bool is an int subclass, but size=True is a bug, not a size.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidParameterError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class ImageLimits:
    """Limits applied to every image before it is decoded.

    Pillow's own decompression-bomb guard (`Image.MAX_IMAGE_PIXELS`, about 89 Mpx) stays on as
    a hard ceiling above these: a `max_pixels` larger than that still refuses such images.
    """

    max_bytes: int = 50 * 1024 * 1024  # encoded file size
    max_pixels: int = 40_000_000  # width * height, read from the header
    max_side: int = 12_000  # longest side, also from the header

    def __post_init__(self) -> None:
        for field in fields(self):
            _check_positive_int(field.name, getattr(self, field.name))


DEFAULT_LIMITS = ImageLimits()


def load_image(
    source: ImageSource, *, limits: ImageLimits = DEFAULT_LIMITS, reduce_to: int | None = None
) -> Image.Image:
    """Read `source` (a path, the encoded bytes, or a binary stream) as an upright 8-bit sRGB image.

    `reduce_to`: the long side the caller will resize the image to. The image is then decoded
    no larger than needed for a clean resize to it (at least twice that side): JPEGs by their
    decoder's DCT scaling, other formats by Pillow's box `reduce` once decoded. A 40 Mpx photo
    stylized at 1024 px then never becomes a 40 Mpx tensor.

    Animated images (GIF, WebP, APNG) give their first frame: a still is what style transfer
    works on, and the first frame is what every viewer shows as the image's thumbnail.

    At most `limits.max_bytes + 1` bytes are read, and width and height are checked from the
    header before any pixel is decoded. Raises InvalidImageError for anything that is not a
    readable image in a supported format (see SUPPORTED_FORMATS), and its subclass
    ImageTooLargeError for anything over `limits` or over Pillow's decompression-bomb guard.
    """
    if not isinstance(limits, ImageLimits):
        raise InvalidParameterError(f"limits must be an ImageLimits, got {limits!r}")
    if reduce_to is not None:
        _check_positive_int("reduce_to", reduce_to)
    name, data = _read_source(source, limits)
    with _opened(name, data, limits) as img:
        if reduce_to is not None:
            img.draft("RGB", _at_least(img.size, 2 * reduce_to))  # JPEG only; else no-op
        img.load()  # decode now, inside the block, so truncation is reported as ours
        return _to_srgb(img, reduce_to=reduce_to)


@contextlib.contextmanager
def _opened(name: str, data: bytes, limits: ImageLimits) -> Iterator[Image.Image]:
    """The image in `data`, its header checked against `limits`; any decoding failure in the
    block (bombs, unknown formats, corrupt or truncated data) raised as Restyle's error."""
    if not data:
        raise InvalidImageError(f"image {name} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow only *warns* between 1x and 2x MAX_IMAGE_PIXELS; for us that is a refusal.
            # catch_warnings swaps process-wide filters and is not thread-safe; that is
            # tolerable here because _check_header refuses such sizes on its own unless
            # max_pixels was raised above Pillow's limit.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as img:
                _check_header(img, name, limits)
                yield img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"image {name} is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImageError(_unidentified_message(name, data)) from exc
    except (*_DECODER_ERRORS, Warning) as exc:
        # A Warning arrives here only when the caller's filters turn Pillow's warnings about
        # corrupt data into errors; it is then as much a decoding failure as an exception.
        raise InvalidImageError(f"cannot decode image {name}: {exc!r}") from exc


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says, read without decoding its pixels."""

    format: str
    width: int
    height: int
    mode: str


def inspect_image(data: bytes, *, limits: ImageLimits = DEFAULT_LIMITS) -> ImageHeader:
    """Check encoded image bytes as far as that is cheap, without decoding them in full.

    The format, dimensions and mode come from the header (Pillow opens lazily), checked against
    `limits` and Pillow's decompression-bomb guard, as `load_image` checks them. Beyond the
    header, PNG chunks are checked against their CRCs (no inflating) and JPEGs are decoded at
    1/8 scale (the decoder's DCT scaling: at most `max_pixels / 64` pixels), which finds the
    commonest broken upload, a truncated file, for a few milliseconds. What only a full decode
    would find is reported by `load_image` later. Raises as `load_image` does.
    """
    _check_byte_size("<bytes>", len(data), limits)
    with _opened("<bytes>", data, limits) as img:
        header = ImageHeader(img.format or "", img.width, img.height, img.mode)
        if header.format == "PNG":
            img.verify()
        elif header.format in ("JPEG", "MPO"):
            img.draft(img.mode, (1, 1))  # the smallest scale the decoder offers
            img.load()
        return header


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
    chw = _as_chw(t)
    pixels = chw.mul(255).round_().to(torch.uint8).permute(1, 2, 0)  # (H, W, 3)
    return Image.fromarray(pixels.contiguous().numpy())


def save_image(
    image: torch.Tensor | Image.Image,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    bit_depth: int = 8,
    quality: int = 95,
) -> Path:
    """Write `image` to `path` atomically and return the path written.

    The format comes from `format` or else the suffix (.jpg .jpeg .png .webp .tif .tiff).
    `bit_depth=16` writes a 16-bit RGB PNG from a tensor; every other format is 8-bit.
    `quality` (1..100) applies to JPEG and WebP. The file appears complete or not at all.
    """
    out = Path(path)
    fmt = check_output_path(out, format=format, bit_depth=bit_depth)
    _check_positive_int("quality", quality)
    if quality > 100:
        raise InvalidParameterError(f"quality must be between 1 and 100, got {quality}")

    _write_atomically(out, encode_image(image, format=fmt, bit_depth=bit_depth, quality=quality))
    return out


def encode_image(
    image: torch.Tensor | Image.Image,
    *,
    format: str,
    bit_depth: int = 8,
    quality: int = 95,
) -> bytes:
    """`image` as the bytes of a file: the one encoder of results (files, CLI, service).

    `format`: JPEG (no chroma subsampling at quality >= 90), PNG, WEBP or TIFF; `bit_depth=16`
    is PNG only and needs a tensor to keep its precision.
    """
    fmt = _output_format(Path(), format)
    if bit_depth not in (8, 16):
        raise InvalidParameterError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    if bit_depth == 16:
        if fmt != "PNG":
            raise InvalidParameterError(f"bit_depth=16 is supported for PNG only, got {fmt}")
        return _encode_png16(_rgb16(image))
    _check_positive_int("quality", quality)
    if quality > 100:
        raise InvalidParameterError(f"quality must be between 1 and 100, got {quality}")
    return _encode_8bit(image, fmt, quality)


ImageInput = str | os.PathLike[str] | bytes | BinaryIO | Image.Image | torch.Tensor
"""What the library accepts as an image: a path, bytes, a binary stream, a PIL image, or a
(1, 3, H, W) / (3, H, W) float tensor in [0, 1]."""


def as_tensor(
    image: ImageInput, *, limits: ImageLimits = DEFAULT_LIMITS, reduce_to: int | None = None
) -> torch.Tensor:
    """Any accepted image input as a (1, 3, H, W) float32 tensor in [0, 1].

    `reduce_to`: for encoded images, the long side the caller resizes to (see `load_image`).
    """
    if isinstance(image, torch.Tensor):
        if image.ndim == 3:
            image = image.unsqueeze(0)
        if image.ndim != 4 or image.shape[:2] != (1, 3):
            raise InvalidParameterError(
                f"image tensor: expected shape (1, 3, H, W), got {tuple(image.shape)}"
            )
        return image.float().clamp(0.0, 1.0)
    if isinstance(image, Image.Image):
        # Through the same loader as files, so limits and mode conversion (alpha, palette,
        # 16-bit) behave identically whatever the caller passes.
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return image_to_tensor(load_image(buffer.getvalue(), limits=limits))
    if isinstance(image, str | os.PathLike):
        image = Path(image)
    return image_to_tensor(load_image(image, limits=limits, reduce_to=reduce_to))


MAX_PAINTING_ASPECT = 20
"""A painting's long side may be at most this many times its short side. Every engine scales a
painting whole (the arbitrary engine analyses it with its short side at 64 to 640 px and its long
side at most 4 times that; the gatys engine gives it the output's area), so a thinner one comes
out a few pixels wide, or none, under what the networks' padding and pooling take. Panoramic
scrolls (1:8) are well within it."""


def check_painting_shape(
    painting: torch.Tensor | tuple[int, int], *, name: str = "painting"
) -> None:
    """Refuse a painting, a (..., H, W) tensor or its (height, width), thinner than
    1:`MAX_PAINTING_ASPECT`, with an `InvalidImageError` naming `name`, its size and the limit.

    The one rule for every engine's paintings (and for what is analysed like one: the arbitrary
    engine's photo under `style_mix`); the service applies it to uploads before any decoding.
    """
    height, width = painting.shape[-2:] if isinstance(painting, torch.Tensor) else painting
    short, long = sorted((int(height), int(width)))
    if long > MAX_PAINTING_ASPECT * short:
        ratio = f"{long / short:.1f}".removesuffix(".0") if short else "inf"
        raise InvalidImageError(
            f"{name}: {width}x{height} px is too thin (1:{ratio}); at most 1:{MAX_PAINTING_ASPECT}"
            f" (the long side up to {MAX_PAINTING_ASPECT} times the short one)"
        )


def check_output_path(
    path: str | os.PathLike[str], *, format: str | None = None, bit_depth: int = 8
) -> str:
    """Validate where and how an image will be saved, before any work; returns the format.

    Callers with slow work ahead (the CLI) call this first, so a typo in the output name
    fails in a second rather than after minutes of optimisation.
    """
    out = Path(path)
    fmt = _output_format(out, format)
    if bit_depth not in (8, 16):
        raise InvalidParameterError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    if bit_depth == 16 and fmt != "PNG":
        # Pillow (13) has no 16-bit RGB mode to save from; only our own PNG writer has one.
        raise InvalidParameterError(f"bit_depth=16 is supported for PNG only, got {fmt}")
    if not out.parent.is_dir():
        raise InvalidParameterError(f"output directory {str(out.parent)!r} does not exist")
    return fmt


def resize_to_long_side(img: Image.Image, size: int) -> Image.Image:
    """Scale `img` (up or down, keeping its aspect ratio) so that its longer side is `size`."""
    _check_positive_int("size", size)
    scale = size / max(img.size)
    return _resize(img, scale)


def resize_to_area(img: Image.Image, pixels: int) -> Image.Image:
    """Scale `img`, keeping its aspect ratio, to about `pixels` pixels in all.

    Used to give a style image the content image's area, so that brush strokes come out at
    the same scale whatever the style image's resolution.
    """
    _check_positive_int("pixels", pixels)
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
        _check_positive_int(name, value)
    # Antialiased bicubic is implemented for float32/float64 only on some devices: compute in
    # float32 for half types and cast back.
    work = t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
    out = F.interpolate(work, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0, 1).to(t.dtype)


def resize_tensor_to_long_side(t: torch.Tensor, size: int) -> torch.Tensor:
    """`resize_tensor` to the (height, width) whose longer side is `size`, keeping the aspect."""
    _check_positive_int("size", size)
    height, width = t.shape[-2:]
    scale = size / max(height, width)
    return resize_tensor(t, (max(1, round(height * scale)), max(1, round(width * scale))))


# --- reading ------------------------------------------------------------------------------------


def _read_source(source: ImageSource, limits: ImageLimits) -> tuple[str, bytes]:
    """Return a printable name for `source` and at most `limits.max_bytes` of its bytes."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        _check_byte_size("<bytes>", len(data), limits)
        return "<bytes>", data
    if isinstance(source, str | os.PathLike):
        return _read_path(Path(source), limits)
    if callable(getattr(source, "read", None)):
        name = getattr(source, "name", None)
        name = name if isinstance(name, str) else "<stream>"
        try:
            data = _read_bounded(source, limits.max_bytes + 1)
        except OSError as exc:
            raise InvalidImageError(f"cannot read image {name}: {exc}") from exc
        _check_byte_size(name, len(data), limits, read=True)
        return name, data
    raise InvalidParameterError(
        f"source must be a path, bytes or a binary stream, got {type(source).__name__}"
    )


def _read_path(path: Path, limits: ImageLimits) -> tuple[str, bytes]:
    name = str(path)
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise InvalidImageError(f"image file {name!r} does not exist") from exc
    except OSError as exc:
        raise InvalidImageError(f"cannot read image file {name!r}: {exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise InvalidImageError(f"image path {name!r} is {kind}")
    # The size check before reading spares us reading a huge file; the bounded read after it
    # covers a file that grows in between.
    _check_byte_size(name, info.st_size, limits)
    try:
        with path.open("rb") as stream:
            data = _read_bounded(stream, limits.max_bytes + 1)
    except OSError as exc:
        raise InvalidImageError(f"cannot read image file {name!r}: {exc}") from exc
    _check_byte_size(name, len(data), limits, read=True)
    return name, data


def _read_bounded(stream: BinaryIO, limit: int) -> bytes:
    """Read until EOF or `limit` bytes; raw streams may return less than asked per read()."""
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _check_byte_size(name: str, size: int, limits: ImageLimits, *, read: bool = False) -> None:
    """`read`: `size` is what a bounded read returned, so the whole may be larger still."""
    if size > limits.max_bytes:
        amount = f"at least {size}" if read else str(size)
        raise ImageTooLargeError(
            f"image {name} is {amount} bytes, over {limits.max_bytes} (max_bytes)"
        )


def _check_header(img: Image.Image, name: str, limits: ImageLimits) -> None:
    """Refuse an image by its header, before a single pixel is decoded."""
    if img.format not in _OPENED_FORMATS:
        raise InvalidImageError(f"image {name} has unsupported format {img.format!r}")
    width, height = img.size
    if max(width, height) > limits.max_side:
        raise ImageTooLargeError(
            f"image {name} is {width}x{height}, a side over {limits.max_side} px (max_side)"
        )
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"image {name} is {width}x{height} = {width * height} pixels, "
            f"over {limits.max_pixels} (max_pixels)"
        )


def _unidentified_message(name: str, data: bytes) -> str:
    """Guess what a refused file is from Pillow's magic-byte checks alone (nothing is parsed).

    Only a guess: some formats (TGA) have no magic bytes and look like others.
    """
    prefix = data[:16]
    supported = ", ".join(SUPPORTED_FORMATS)
    Image.init()
    for fmt, (_, accept) in Image.OPEN.items():
        if fmt not in _OPENED_FORMATS and accept is not None and _accepts(accept, prefix):
            return (
                f"image {name} is not in a supported format (it looks like {fmt}); "
                f"supported: {supported}"
            )
    return (
        f"{name} is not an image in a supported format ({len(data)} bytes); supported: {supported}"
    )


def _accepts(accept: Callable[[bytes], bool | str], prefix: bytes) -> bool:
    try:
        return bool(accept(prefix))
    except _DECODER_ERRORS:  # some checks unpack fixed offsets and fail on short files
        return False


# --- conversion to 8-bit sRGB ------------------------------------------------------------------


_ORIENTATION = 0x0112  # the EXIF tag


def _to_srgb(img: Image.Image, *, reduce_to: int | None = None) -> Image.Image:
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
        except (ImageCms.PyCMSError, *_DECODER_ERRORS):
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


# --- writing -----------------------------------------------------------------------------------

_SUFFIX_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF"}


def _output_format(path: Path, format: str | None) -> str:
    if format is not None:
        fmt = _FORMAT_ALIASES.get(format.upper(), format.upper())
        if fmt not in _SUFFIX_FORMATS.values():
            raise InvalidParameterError(
                f"format must be one of JPEG, PNG, WEBP, TIFF, got {format!r}"
            )
        return fmt
    from_suffix = _SUFFIX_FORMATS.get(path.suffix.lower())
    if from_suffix is None:
        known = " ".join(_SUFFIX_FORMATS)
        raise InvalidParameterError(
            f"cannot tell the output format of {str(path)!r} from suffix {path.suffix!r}; "
            f"use one of {known} or pass format="
        )
    return from_suffix


def _encode_8bit(image: torch.Tensor | Image.Image, fmt: str, quality: int) -> bytes:
    img = image if isinstance(image, Image.Image) else tensor_to_image(image)
    if img.mode != "RGB":
        raise InvalidParameterError(f"image must be an RGB image, got mode {img.mode!r}")
    options: dict[str, object] = {}
    if fmt == "JPEG":
        # Chroma subsampling visibly smears painted colour edges; at high quality keep it off.
        options = {"quality": quality, "subsampling": 0 if quality >= 90 else 2}
    elif fmt == "WEBP":
        options = {"quality": quality}
    elif fmt == "TIFF":
        options = {"compression": "tiff_deflate"}
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _rgb16(image: torch.Tensor | Image.Image) -> np.ndarray:
    """Validate a 16-bit request and return (H, W, 3) big-endian uint16 samples."""
    if isinstance(image, Image.Image):
        raise InvalidParameterError(
            "bit_depth=16 needs a tensor: an 8-bit PIL image has no 16-bit precision to save"
        )
    chw = _as_chw(image).to(torch.float64)
    samples = chw.mul(65535).round_().to(torch.int32).permute(1, 2, 0)  # (H, W, 3)
    return np.ascontiguousarray(samples.numpy(), dtype=">u2")


def _encode_png16(rgb: np.ndarray) -> bytes:
    """Encode (H, W, 3) big-endian uint16 as a 16-bit RGB PNG (Pillow cannot write one)."""
    height, width, _ = rgb.shape
    rows = rgb.view(np.uint8).reshape(height, width * 6)  # 6 bytes per pixel
    # The Sub filter (type 1: each byte minus the byte one pixel to its left, mod 256) makes
    # smooth photographic rows compress far better than storing them raw.
    filtered = rows.copy()
    filtered[:, 6:] -= rows[:, :-6]
    scanlines = np.concatenate([np.ones((height, 1), np.uint8), filtered], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)  # 16-bit, truecolour
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)),
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it over `path` in one step."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        # os.open with 0o666 lets the umask decide permissions, as a plain open() would.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise RestyleError(f"cannot write image to {str(path)!r}: {exc}") from exc


# --- helpers -----------------------------------------------------------------------------------


def _as_chw(t: torch.Tensor) -> torch.Tensor:
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


def _resize(img: Image.Image, scale: float) -> Image.Image:
    width, height = img.size
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _at_least(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """`size` scaled so that its long side is `long_side`, if that is smaller."""
    width, height = size
    scale = min(1.0, long_side / max(width, height))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _reduce(img: Image.Image, long_side: int) -> Image.Image:
    """`img` shrunk by the largest whole factor that keeps its long side >= `long_side`: a box
    filter, exact and cheap, that leaves the final (antialiased) resize to the caller."""
    factor = max(img.size) // long_side
    return img.reduce(factor) if factor >= 2 else img
