"""Styles by region, the pieces every engine shares: a mask read and fitted to the output,
feathered so no seam shows, and results composited region over region.

A mask is a grey image (white: the region; soft edges allowed), any size: it is resized to the
output (with a warning where its aspect ratio differs, since the region then moves). Its edge
is feathered by a Gaussian of `feather_sigma` px (by default 0.5% of the output's diagonal), so
the change from one style to the next spreads over a few strokes instead of a one-pixel step.
Regions are composited in order, a later one over an earlier one, over the base result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from restyle.errors import InvalidParameterError
from restyle.imaging import DEFAULT_LIMITS, ImageInput, ImageLimits, as_tensor

MAX_REGIONS = 8
"""Each region is one more run of an engine: a bound on what one call may cost."""
EMPTY_LEVEL = 1 / 255
"""A mask whose brightest pixel is below this selects nothing."""
ASPECT_TOLERANCE = 0.01
_LUMA = (0.299, 0.587, 0.114)


def load_mask(
    source: ImageInput,
    size: tuple[int, int],
    *,
    name: str = "mask",
    limits: ImageLimits = DEFAULT_LIMITS,
) -> tuple[torch.Tensor, str | None]:
    """The mask `source` as a (1, 1, H, W) tensor in [0, 1] at `size` (H, W), and a warning when
    it had to be stretched to another aspect ratio (else None). An empty mask is an
    `InvalidParameterError` naming it; a file that is not an image is the imaging layer's
    `InvalidImageError`."""
    image = as_tensor(source, limits=limits)
    weights = torch.tensor(_LUMA, dtype=image.dtype).view(1, 3, 1, 1)
    grey = (image * weights).sum(dim=1, keepdim=True)
    if float(grey.max()) < EMPTY_LEVEL:
        raise InvalidParameterError(f"{name}: the mask is black everywhere: it selects nothing")
    height, width = int(grey.shape[-2]), int(grey.shape[-1])
    warning = None
    if abs(math.log((width / height) / (size[1] / size[0]))) > ASPECT_TOLERANCE:
        warning = (
            f"{name}: a {width}×{height} mask stretched to the {size[1]}×{size[0]} output (another "
            "aspect ratio: the region moves with it)"
        )
    if (height, width) != size:
        grey = F.interpolate(grey, size=size, mode="bilinear", align_corners=False, antialias=True)
    return grey.clamp(0.0, 1.0), warning


def default_feather(size: tuple[int, int]) -> float:
    """The feathering's sigma in px for an output of `size` (H, W): 0.5% of its diagonal, at
    least 1 px."""
    return max(1.0, 0.005 * math.hypot(*size))


def feather(mask: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
    """`mask` (1, 1, H, W) blurred by a Gaussian of `sigma` px (None: `default_feather`), its
    edges reflected, so a hard edge becomes a ramp of about 4 sigma."""
    height, width = int(mask.shape[-2]), int(mask.shape[-1])
    sigma = default_feather((height, width)) if sigma is None else sigma
    if sigma <= 0:
        return mask
    radius = min(math.ceil(3 * sigma), max(1, min(height, width) - 1))
    offsets = torch.arange(-radius, radius + 1, dtype=mask.dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    blurred = F.pad(mask, (radius, radius, 0, 0), mode="reflect")
    blurred = F.conv2d(blurred, kernel.view(1, 1, 1, -1))
    blurred = F.pad(blurred, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(blurred, kernel.view(1, 1, -1, 1)).clamp(0.0, 1.0)


def composite(
    base: torch.Tensor, layers: Sequence[tuple[torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    """`base` (B, 3, H, W) with each (mask (1, 1, H, W), image (B, 3, H, W)) of `layers` laid
    over it in order: `out = out · (1 − mask) + image · mask`."""
    if len(layers) > MAX_REGIONS:
        raise InvalidParameterError(f"regions: at most {MAX_REGIONS}, got {len(layers)}")
    out = base
    for mask, image in layers:
        if image.shape != base.shape or mask.shape[-2:] != base.shape[-2:]:
            raise InvalidParameterError(
                f"regions: every result and mask must be {tuple(base.shape[-2:])} px, got "
                f"{tuple(image.shape[-2:])} and {tuple(mask.shape[-2:])}"
            )
        out = out * (1 - mask) + image * mask
    return out
