"""A fixed filter that removes what a network draws locked to its own pixel grid.

Feed-forward decoders that upsample twice by 2 (MicroAST's bilinear upsampling followed by
asymmetric depthwise convolutions and ReLUs) draw a faint pattern that repeats every 4 output
pixels: the upsampled features' variance differs between the pixels of a 2x2 phase, and the ReLU
turns that difference into a mean that repeats with the grid (docs/artefacts.md traces it layer
by layer). A natural picture has almost no energy exactly at the grid's frequencies, so a notch
there removes the pattern and leaves the picture.

Along each axis the filter is δ − comb ∗ (δ − h): `comb` averages the 2k+1 pixels 0, ±4, ±8, …
away (it passes only the grid's frequencies: multiples of π/2), and `h` = [1, 2, 2, 2, 1]/8 is the
local mean over one period (zero at π/2 and π, one at 0). So the response is 0 at the grid's
frequencies π/2 and π, 1 at 0, and within a few percent of 1 elsewhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PERIOD = 4
DEFAULT_TAPS = 2  # comb reach in periods: the notch is about π/10 wide, the kernel 21 px


def notch_kernel(*, taps: int = DEFAULT_TAPS, period: int = PERIOD) -> torch.Tensor:
    """The 1-D kernel (float64, odd length, sums to 1) that notches multiples of 2π/period."""
    if period != 4:
        raise ValueError(f"period: only 4 is supported, got {period}")
    comb = torch.zeros(2 * taps * period + 1, dtype=torch.float64)
    comb[::period] = 1.0 / (2 * taps + 1)
    local_mean = torch.tensor([1, 2, 2, 2, 1], dtype=torch.float64) / 8  # zero at π/2 and π
    high = -local_mean
    high[2] += 1.0
    # full convolution of the comb with (δ − h): a kernel of len(comb) + 4 taps
    kernel = -torch.nn.functional.conv1d(comb.view(1, 1, -1), high.view(1, 1, -1), padding=4)
    kernel = kernel.view(-1)
    kernel[kernel.numel() // 2] += 1.0
    return kernel


class GridFilter(nn.Module):
    """The notch along columns then rows, per channel, reflected at the edges; no parameters."""

    def __init__(self, channels: int = 3, *, taps: int = DEFAULT_TAPS) -> None:
        super().__init__()
        kernel = notch_kernel(taps=taps).float()
        self.reach = kernel.numel() // 2
        self.channels = channels
        # Not saved with a network's weights: a constant of the design, not learnt.
        self.kernel: torch.Tensor
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, r = self.channels, self.reach
        k = self.kernel.to(x.dtype)
        x = F.pad(x, (r, r, 0, 0), mode="reflect")
        x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        x = F.pad(x, (0, 0, r, r), mode="reflect")
        return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
