"""Reading images: bytes, paths and streams to an upright 8-bit sRGB image or a tensor.

Written for hostile uploads: sizes are checked before anything is decoded, Pillow's
decompression-bomb guard stays on, only a short allow-list of formats is parsed, and every
failure is one of the `restyle.errors` types with a message that names the source and the value.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch
from PIL import Image, UnidentifiedImageError

from restyle.errors import ImageTooLargeError, InvalidImageError, InvalidParameterError
from restyle.imaging.convert import image_to_tensor, to_srgb
from restyle.imaging.limits import (
    DECODER_ERRORS,
    DEFAULT_LIMITS,
    OPENED_FORMATS,
    SUPPORTED_FORMATS,
    ImageLimits,
    check_positive_int,
)

ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


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
        check_positive_int("reduce_to", reduce_to)
    name, data = _read_source(source, limits)
    with _opened(name, data, limits) as img:
        if reduce_to is not None:
            img.draft("RGB", _at_least(img.size, 2 * reduce_to))  # JPEG only; else no-op
        img.load()  # decode now, inside the block, so truncation is reported as ours
        return to_srgb(img, reduce_to=reduce_to)


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
    except (*DECODER_ERRORS, Warning) as exc:
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
    if img.format not in OPENED_FORMATS:
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
        if fmt not in OPENED_FORMATS and accept is not None and _accepts(accept, prefix):
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
    except DECODER_ERRORS:  # some checks unpack fixed offsets and fail on short files
        return False


def _at_least(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """`size` scaled so that its long side is `long_side`, if that is smaller."""
    width, height = size
    scale = min(1.0, long_side / max(width, height))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))
