"""The one small hierarchy of errors Restyle raises.

The library never prints or exits: it raises one of these, with a message that names the
argument and the value received. The CLI maps them to exit codes, the service to HTTP status codes.
"""

from __future__ import annotations


class RestyleError(Exception):
    """Base class of every error Restyle raises on purpose."""


class InvalidImageError(RestyleError):
    """An input file is not an image Restyle can read (corrupt, truncated, unsupported, empty),
    or a painting of a shape no engine takes (too thin: `imaging.check_painting_shape`)."""


class InvalidVideoError(InvalidImageError):
    """An input file is not a video Restyle can read (not a video, truncated, undecodable frame).

    A kind of `InvalidImageError`, so the CLI and the service treat a bad clip as a bad input.
    """


class ImageTooLargeError(InvalidImageError):
    """An image is over a byte or pixel limit (including decompression bombs)."""


class InvalidParameterError(RestyleError, ValueError):
    """An option has a value outside its documented range or type."""


class WeightsError(RestyleError):
    """Model weights are missing, unreadable or do not match the expected architecture."""


class DeviceError(RestyleError):
    """The requested compute device does not exist on this machine."""


class NumericalError(RestyleError):
    """An optimisation diverged (the loss became NaN or infinite)."""
