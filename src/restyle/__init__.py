"""Restyle: neural style transfer. `restyle.stylize(content, style, ...)` is the front door."""

from restyle.api import stylize, stylize_tensor
from restyle.errors import (
    DeviceError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidParameterError,
    RestyleError,
    WeightsError,
)
from restyle.progress import Progress

__version__ = "0.1.0"

__all__ = [
    "DeviceError",
    "ImageTooLargeError",
    "InvalidImageError",
    "InvalidParameterError",
    "Progress",
    "RestyleError",
    "WeightsError",
    "stylize",
    "stylize_tensor",
]
