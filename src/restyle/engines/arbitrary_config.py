"""The arbitrary engine's setup and options: the fast engine's, plus its network and style size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from restyle.engines.fast_config import FastOptions, FastSetup
from restyle.errors import InvalidParameterError
from restyle.options import check_options, option

Network = Literal["microast", "metanet"]


@dataclass(frozen=True)
class ArbitrarySetup(FastSetup):
    """The fast engine's setup plus the arbitrary network and its weights.

    - `network`: "microast" (default: the published MicroAST weights, Wang et al. 2023) or
      "metanet" (Restyle's seed design, a MetaNet that writes a transform network; its CPU-
      trained weights are provisional).
    - `model`: a checkpoint of that network; "" uses the one shipped with Restyle.
    """

    network: Network = option(
        "microast",
        label="Network for any painting",
        help="arbitrary network: microast (pretrained) or metanet (Restyle's seed design, "
        "trained on a CPU: weaker)",
    )
    model: str = option(
        "",
        label="Network checkpoint",
        help="checkpoint of the arbitrary network (default: the shipped one)",
    )


@dataclass(frozen=True)
class ArbitraryOptions(FastOptions):
    """The fast engine's options plus the painting's analysis size.

    `style_size`: the painting's short side when its statistics are taken; 0 chooses by the
    result's size (MicroAST: 512 px, 640 px for results over 768 px, from a sweep in
    docs/arbitrary.md; MetaNet: its training size). Smaller gives larger brush strokes.
    """

    style_size: int = option(
        0,
        label="Painting analysis size (px)",
        help="painting short side when analysed (0: by the result's size; smaller: larger strokes)",
        minimum=0,
        maximum=2048,
    )
    style_mix: float = option(
        1.0,
        label="Style mix in the network",
        help="microast: how much of the painting the network mixes in, in its feature space "
        "(1: all of it); Style strength then blends the result with the photo pixel by pixel",
        minimum=0.0,
        maximum=1.0,
        public=True,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_options(self)
        if self.style_size != 0 and self.style_size < 64:
            raise InvalidParameterError(
                f"style_size: 0 (as trained) or 64..2048 px, got {self.style_size}"
            )
