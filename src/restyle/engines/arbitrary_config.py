"""Settings of the arbitrary engine: the fast engine's, plus the MetaNet and the analysis size."""

from __future__ import annotations

from dataclasses import dataclass

from restyle.engines.fast_config import FastConfig
from restyle.errors import InvalidParameterError


@dataclass(frozen=True)
class ArbitraryConfig(FastConfig):
    """The fast engine's settings plus the MetaNet to use and the painting's analysis size.

    - `model`: a MetaNet checkpoint; "" uses the one shipped with Restyle.
    - `style_size`: the painting's short side when its statistics are taken; 0 uses the size it
      was trained at. Smaller gives larger brush strokes.
    """

    model: str = ""
    style_size: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.style_size != 0 and not 64 <= self.style_size <= 2048:
            raise InvalidParameterError(
                f"style_size: 0 (as trained) or 64..2048 px, got {self.style_size}"
            )
