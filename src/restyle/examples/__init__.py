"""Example photos bundled with Restyle, and the names of the paintings the demo uses.

Styles have one namespace, the model zoo's: a style's name (`starry-night`) is a trained
network for the fast engine and, for the painting engines, the zoo's copy of the painting. The
bundled examples are photos only (licences in LICENSES.md); `starry_night` is read as
`starry-night` (`restyle.zoo.find`), so the two spellings can never mean different things.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

_HERE = Path(__file__).parent

# The demo pairs photos and styles in this order; the Great Wave swamps the small cat photo at
# the default style weight, so the cat gets Kandinsky.
_EXAMPLES: dict[str, tuple[str, ...]] = {
    "photos": ("parrots", "lighthouse", "cat"),
    "styles": ("starry-night", "the-scream", "composition-vii", "great-wave"),
}


def refine_photos() -> Path:
    """The folder of freely licensed photos a personal style is refined on when no other is
    given (13 photos, short side 384 px; authors and licences in refine/LICENSES.md)."""
    return _HERE / "refine"


def example_names(kind: Literal["photos", "styles"]) -> tuple[str, ...]:
    return _EXAMPLES[kind]


def bundled(name: str) -> Path:
    """Path of a bundled example that must exist (the demo's own names)."""
    path = example_path(name)
    if path is None:
        raise KeyError(f"no bundled example named {name!r}")
    return path


def example_path(name: str) -> Path | None:
    """A bundled photo's path by name ('parrots'), or a zoo style's painting ('starry-night',
    also spelt 'starry_night'); None if there is neither."""
    from restyle import zoo

    if name in _EXAMPLES["photos"]:
        return _HERE / f"{name}.jpg"
    entry = zoo.find(name)
    return None if entry is None else entry.painting_path
