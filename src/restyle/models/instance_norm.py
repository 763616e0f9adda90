"""Affine instance normalisation whose statistics can come from outside the current input.

Tiled inference of a large image must normalise every tile with the statistics of the whole
image, not of the tile: per-tile statistics give each tile its own contrast and colour, and the
seams show. `fixed_stats` lets a caller supply those whole-image statistics; `observer` lets it
see the un-normalised activations to gather them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class InstanceNorm(nn.Module):
    def __init__(self, channels: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.fixed_stats: tuple[torch.Tensor, torch.Tensor] | None = None  # mean, var: (B, C, 1, 1)
        self.observer: Callable[[torch.Tensor], None] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observer is not None:
            self.observer(x)
        if self.fixed_stats is None:
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        mean, var = self.fixed_stats
        return normalize_with(x, mean, var, self.weight, self.bias, eps=self.eps)


def normalize_with(
    x: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    eps: float,
) -> torch.Tensor:
    """Instance norm with given statistics, folded into one scale and shift per channel."""
    scale = weight.view(1, -1, 1, 1) * torch.rsqrt(var + eps)  # (B, C, 1, 1)
    shift = bias.view(1, -1, 1, 1) - mean * scale
    return x * scale.to(x.dtype) + shift.to(x.dtype)
