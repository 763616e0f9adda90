"""The arbitrary engine's setup and options: the fast engine's, plus the MetaNet and style size."""

from __future__ import annotations

from dataclasses import dataclass

from restyle.engines.fast_config import FastOptions, FastSetup
from restyle.errors import InvalidParameterError
from restyle.options import check_options, option


@dataclass(frozen=True)
class ArbitrarySetup(FastSetup):
    """The fast engine's setup plus the MetaNet checkpoint ("" uses the one shipped)."""

    model: str = option("", help="MetaNet checkpoint (default: the one shipped with restyle)")


@dataclass(frozen=True)
class ArbitraryOptions(FastOptions):
    """The fast engine's options plus the painting's analysis size.

    `style_size`: the painting's short side when its statistics are taken; 0 uses the size it
    was trained at. Smaller gives larger brush strokes.
    """

    style_size: int = option(
        0,
        help="painting short side when analysed (0: as trained; smaller: larger strokes)",
        minimum=0,
        maximum=2048,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_options(self)
        if self.style_size != 0 and self.style_size < 64:
            raise InvalidParameterError(
                f"style_size: 0 (as trained) or 64..2048 px, got {self.style_size}"
            )
