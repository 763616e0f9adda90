"""Restyle: neural style transfer. `restyle.stylize(content, style, ...)` is the front door.

`restyle.Engines` holds loaded engines: build one and pass it as `engines=` to load each model
once across many calls (one-line calls share one holder per device).

`restyle.styles()` lists the trained styles shipped with the package (the model zoo).
"""

from restyle.api import stylize, stylize_tensor
from restyle.engines.holder import Engines
from restyle.errors import (
    DeviceError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidParameterError,
    RestyleError,
    WeightsError,
)
from restyle.progress import Progress
from restyle.zoo import StyleEntry
from restyle.zoo import entries as styles

__version__ = "0.1.0"

__all__ = [
    "DeviceError",
    "Engines",
    "ImageTooLargeError",
    "InvalidImageError",
    "InvalidParameterError",
    "Progress",
    "RestyleError",
    "StyleEntry",
    "WeightsError",
    "styles",
    "stylize",
    "stylize_tensor",
]
