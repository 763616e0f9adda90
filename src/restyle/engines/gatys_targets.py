"""The gatys engine's targets at one scale: the photo's content features and the paintings'
blended Gram matrices, each layer with its factor.

With relative losses (`loss_scale="relative"`, the default) each layer's error is divided by
its target's own energy, so the objective is `content_weight × content distance + style_weight ×
style distance` of `restyle.metrics` whatever the photo and the painting (docs/architecture.md,
"Losses and their normalisation").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from restyle.engines.gatys_config import MAX_SIZE, GatysOptions
from restyle.engines.gatys_plan import MIN_SIDE
from restyle.imaging import resize_tensor
from restyle.losses import gram


@dataclass
class Targets:
    """Precomputed targets at one scale: content features and the blended style Grams, with
    each layer's factor (its weight, and with relative losses 1 / its target's energy)."""

    content: dict[str, torch.Tensor]
    content_factors: dict[str, float]
    style_grams: dict[str, torch.Tensor]
    style_factors: dict[str, float]
    # Σ_s c_s·mse(G, A_s) = (Σ c_s)·mse(G, T) + const with T = Σ c_s·A_s / Σ c_s: one Gram
    # comparison per layer instead of one per style, with this constant added back so reported
    # losses are exact.
    style_constant: float


@torch.no_grad()
def scale_targets(
    features_of: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    cfg: GatysOptions,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    blend: Sequence[float],
    size: tuple[int, int],
) -> Targets:
    """The targets at `size` (H, W) of a run with options `cfg`; `features_of` is the run's
    VGG19 (an image → its features at the run's layers, float32)."""
    relative = cfg.loss_scale == "relative"
    content_features = features_of(resize_tensor(content, size))
    content_weights = _mean_if(relative, cfg.content_layers, cfg.content_layer_weights)
    content_targets, content_factors = {}, {}
    for layer, weight in content_weights.items():
        target = content_features[layer]
        content_targets[layer] = target
        # Relative: ‖F − P‖² / ‖P‖², the content distance of restyle.metrics.
        content_factors[layer] = weight / _energy(target) if relative else weight
    style_weights = _mean_if(relative, cfg.style_layers, cfg.style_layer_weights)
    sums: dict[str, torch.Tensor] = {}
    totals = dict.fromkeys(style_weights, 0.0)  # Σ c_s per layer
    constants = dict.fromkeys(style_weights, 0.0)  # Σ c_s·mean(A_s²) per layer
    for style, weight in zip(styles, blend, strict=True):
        if weight == 0:
            continue
        features = features_of(_style_at(style, size, cfg.style_scale))
        for layer in style_weights:
            g = gram(features[layer])
            energy = _energy(g)
            # Relative: each painting's Gram term over its own energy (‖G − A‖² / ‖A‖², the
            # style distance), so a low-contrast painting pulls as hard as a vivid one.
            c = weight / energy if relative else weight
            sums[layer] = sums.get(layer, 0) + c * g
            totals[layer] += c
            constants[layer] += c * energy
    grams, factors, constant = {}, {}, 0.0
    for layer, layer_weight in style_weights.items():
        grams[layer] = sums[layer] / totals[layer]
        factors[layer] = layer_weight * totals[layer]
        constant += layer_weight * (constants[layer] - totals[layer] * _energy(grams[layer]))
    return Targets(
        content_targets,
        content_factors,
        grams,
        factors,
        cfg.style_weight * max(constant, 0.0),
    )


def _style_at(style: torch.Tensor, size: tuple[int, int], style_scale: float) -> torch.Tensor:
    """The painting at the output's area (times style_scale²), but never a side over
    MAX_SIZE nor a short side under MIN_SIDE (a thin painting, a coarse scale, a small
    style_scale)."""
    style_area = size[0] * size[1] * style_scale**2
    sh, sw = style.shape[-2:]
    factor = min(math.sqrt(style_area / (sh * sw)), MAX_SIZE / max(sh, sw))
    factor = max(factor, min(MIN_SIDE / min(sh, sw), MAX_SIZE / max(sh, sw)))
    return resize_tensor(style, (max(1, round(sh * factor)), max(1, round(sw * factor))))


def _energy(tensor: torch.Tensor) -> float:
    """Mean square of a target (its loss's scale); never 0, so a blank painting divides."""
    return max(tensor.pow(2).mean().item(), 1e-12)


def _mean_if(relative: bool, layers: Sequence[str], weights: Sequence[float]) -> dict[str, float]:
    """Layer → weight; relative losses take the weighted mean over layers (the distances'
    own convention), absolute ones the weighted sum (the objective before relative losses)."""
    total = sum(weights) if relative and sum(weights) > 0 else 1.0
    return {layer: w / total for layer, w in zip(layers, weights, strict=True)}
