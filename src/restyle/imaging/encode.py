"""Writing images: the one encoder of results (files, CLI, service), 16-bit PNG included, and
atomic saving."""

from __future__ import annotations

import io
import os
import secrets
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from restyle.errors import InvalidParameterError, RestyleError
from restyle.imaging.convert import as_chw, tensor_to_image
from restyle.imaging.limits import check_positive_int


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
    check_positive_int("quality", quality)
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
    check_positive_int("quality", quality)
    if quality > 100:
        raise InvalidParameterError(f"quality must be between 1 and 100, got {quality}")
    return _encode_8bit(image, fmt, quality)


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
    chw = as_chw(image).to(torch.float64)
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
