"""Restyle: neural style transfer. `restyle.stylize(content, style, ...)` is the front door.

`restyle.Engines` holds loaded engines: build one and pass it as `engines=` to load each model
once across many calls (one-line calls share one holder per device).

`restyle.styles()` lists the trained styles shipped with the package (the model zoo).

The names below are imported on first use (PEP 562), so `import restyle` and the command
line's help do not pay for PyTorch (two seconds or more) until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# public name → (module, its name there)
_EXPORTS = {
    "DeviceError": ("restyle.errors", "DeviceError"),
    "Engines": ("restyle.engines.holder", "Engines"),
    "ImageTooLargeError": ("restyle.errors", "ImageTooLargeError"),
    "InvalidImageError": ("restyle.errors", "InvalidImageError"),
    "InvalidParameterError": ("restyle.errors", "InvalidParameterError"),
    "Progress": ("restyle.progress", "Progress"),
    "RestyleError": ("restyle.errors", "RestyleError"),
    "StyleEntry": ("restyle.zoo", "StyleEntry"),
    "WeightsError": ("restyle.errors", "WeightsError"),
    "styles": ("restyle.zoo", "entries"),
    "stylize": ("restyle.api", "stylize"),
    "stylize_tensor": ("restyle.api", "stylize_tensor"),
}

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


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'restyle' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # once found, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
