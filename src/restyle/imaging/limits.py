"""What every image is checked against: sizes, formats, a painting's shape.

The limits are applied from the header, before any pixel is decoded (`decode.py`); the formats
are the short allow-list of Pillow decoders that ever see user bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields

import torch

from restyle.errors import InvalidImageError, InvalidParameterError

# Only these decoders ever see user bytes: each extra Pillow plugin is extra attack surface.
# "MPO" is what Pillow calls a JPEG carrying several pictures (some phone cameras); the JPEG
# decoder opens it, and like every multi-frame image we use its first picture.
SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
OPENED_FORMATS = frozenset({*SUPPORTED_FORMATS, "MPO"})

# What corrupt or truncated files make Pillow's parsers raise; all become InvalidImageError.
# Beyond the documented ones, fuzzing found TypeError (malformed TIFF tags), and Pillow's own
# fuzz tests list IndexError, KeyError and arithmetic errors. Not a bare `Exception`: that
# would also hide bugs in this package.
DECODER_ERRORS = (
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


def check_positive_int(name: str, value: object) -> None:
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
            check_positive_int(field.name, getattr(self, field.name))


DEFAULT_LIMITS = ImageLimits()


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
