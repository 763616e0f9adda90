"""Example photos and public-domain paintings bundled with Restyle (licences in LICENSES.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

_HERE = Path(__file__).parent

# Which bundled files are photos and which are paintings; the names are what the CLI accepts.
# The demo pairs photos and styles in this order; the Great Wave swamps the small cat photo
# at the default style weight, so the cat gets Kandinsky.
_EXAMPLES: dict[str, tuple[str, ...]] = {
    "photos": ("parrots", "lighthouse", "cat"),
    "styles": ("starry_night", "the_scream", "composition_vii", "great_wave"),
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
    """Path of a bundled example by name (e.g. 'starry_night'), or None if there is none."""
    if any(name in names for names in _EXAMPLES.values()):
        return _HERE / f"{name}.jpg"
    return None
