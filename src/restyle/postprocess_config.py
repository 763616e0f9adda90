"""The post-processing options, declared free of PyTorch so that option surfaces (the CLI's
flags, the service's forms, the docs' tables) read them without loading it; the step itself is
`restyle.postprocess`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from restyle.options import check_options, option

ColorSpace = Literal["yiq", "ycbcr"]
PreserveColor = Literal["none", "luminance", "mean_cov", "histogram"]
PRESERVE_COLOR_CHOICES: tuple[PreserveColor, ...] = get_args(PreserveColor)

MAX_OUTPUT_SIDE = 20_000


@dataclass(frozen=True)
class PostprocessConfig:
    """How an engine's stylized output becomes the final image.

    Attributes:
        strength: Blend between the content (0) and the full stylization (1), in [0, 1].
            Default 1.0: the stylized image as the engine made it.
        preserve_color: Keep the content's colours. "none" (default) keeps the style's colours;
            "luminance" keeps the stylized luminance and the content's chroma; "mean_cov"
            gives the output the content's RGB mean and covariance; "histogram" gives each
            channel the content's histogram. See `restyle.color`.
        color_space: Luminance/chroma space for "luminance": "yiq" (default, as in Gatys et al.
            2017) or "ycbcr" (full-range BT.601). Ignored by the other modes.
        output_size: (height, width) of the final image, each side 1..20000, or None (default)
            to keep the content's size.
    """

    strength: float = option(
        1.0,
        label="Style strength",
        help="how much of the painting: 0 gives the photo back, 1 the full stylization",
        minimum=0.0,
        maximum=1.0,
        public=True,
    )
    preserve_color: PreserveColor = option(
        "none",
        label="Keep the photo's colours",
        help="keep the photo's colours: luminance (the painting's light and shade in the photo's "
        "colours), mean_cov or histogram (the photo's colour statistics); none keeps the "
        "painting's colours (a bare CLI flag: luminance)",
        public=True,
        bare="luminance",
    )
    color_space: ColorSpace = option(
        "yiq",
        label="Colour space of luminance mode",
        help="luminance/chroma space of luminance mode",
    )
    output_size: tuple[int, int] | None = option(
        None,
        label="Final size (height × width, px)",
        help="final HEIGHTxWIDTH in px, a resample of the finished image (none: the photo's)",
        minimum=1,
        maximum=MAX_OUTPUT_SIDE,
    )

    def __post_init__(self) -> None:
        check_options(self)
