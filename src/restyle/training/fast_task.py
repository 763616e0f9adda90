"""What the fast engine learns: a TransformNet for one painting, with Johnson et al.'s loss."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restyle.imaging import resize_tensor_to_long_side
from restyle.losses import gram, total_variation
from restyle.models.checkpoint import save_transform_net
from restyle.models.transform_net import TransformNet, TransformNetConfig
from restyle.training.config import FastLossConfig, as_dict
from restyle.vgg import LAYER_NAMES, VGG19Features


class FastStyleTask:
    """Train a transform network so its outputs match `style`'s Grams and the photo's content."""

    engine = "fast"

    def __init__(
        self,
        style: torch.Tensor,
        *,
        network: TransformNetConfig,
        loss: FastLossConfig,
        style_info: dict[str, Any],
        vgg_weights: str | os.PathLike[str] | None = None,
    ) -> None:
        self.style = style  # (1, 3, H, W) in [0, 1]
        self.network = network
        self.loss_config = loss
        self.style_info = style_info
        self.vgg_weights = vgg_weights
        self.vgg: VGG19Features | None = None
        self.target_grams: dict[str, torch.Tensor] = {}

    def describe(self) -> dict[str, Any]:
        """What defines this task; a resumed run must match it."""
        return {
            "engine": self.engine,
            "network": self.network.to_dict(),
            "loss": as_dict(self.loss_config),
            "style": self.style_info,
        }

    def build_model(self) -> nn.Module:
        return TransformNet(self.network)

    def setup(self, device: torch.device, *, image_size: int, channels_last: bool) -> None:
        """Load VGG19 on `device` and compute the painting's target Grams once."""
        wanted = set(self.loss_config.content_layers) | set(self.loss_config.style_layers)
        layers = tuple(name for name in LAYER_NAMES if name in wanted)
        vgg = VGG19Features(layers, weights_path=self.vgg_weights).to(device)
        if channels_last:
            vgg = vgg.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.vgg = vgg
        style = resize_tensor_to_long_side(self.style, self.loss_config.style_size or image_size)
        with torch.no_grad():
            features = vgg(style.to(device))
            self.target_grams = {
                layer: gram(features[layer].float()) for layer in self.loss_config.style_layers
            }

    def loss(
        self, model: nn.Module, photos: torch.Tensor, *, step: int = 0, rank: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted loss of `model` on a batch of photos (B, 3, S, S) in [0, 1], and its terms."""
        assert self.vgg is not None, "setup() first"
        return johnson_loss(self.vgg, model(photos), photos, self.target_grams, self.loss_config)

    def sample(self, model: nn.Module, photos: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = model(photos)
        return out

    def save_model(
        self, path: str | os.PathLike[str], model: nn.Module, info: dict[str, Any]
    ) -> Path:
        assert isinstance(model, TransformNet)
        return save_transform_net(path, model, info={**self.describe(), **info})


def johnson_loss(
    vgg: VGG19Features,
    stylized: torch.Tensor,
    photos: torch.Tensor,
    target_grams: dict[str, torch.Tensor],
    config: FastLossConfig,
    style_scales: dict[str, float] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Johnson et al.'s perceptual loss of a stylized batch, and its weighted terms.

    Content: MSE of `config.content_layers` features against the photos'; style: MSE of Grams
    against `target_grams` (each (1, C, C)), each layer's times `style_scales[layer]` if given;
    total variation of the output.
    """
    scales = style_scales or {}
    with torch.no_grad():
        photo_features = vgg(photos)
    features = vgg(stylized)
    zero = stylized.new_zeros((), dtype=torch.float32)
    content = sum(
        (
            F.mse_loss(features[layer].float(), photo_features[layer].float())
            for layer in config.content_layers
        ),
        start=zero,
    )
    style = sum(
        (
            F.mse_loss(gram(features[layer].float()), target.expand(photos.shape[0], -1, -1))
            * scales.get(layer, 1.0)
            for layer, target in target_grams.items()
        ),
        start=zero,
    )
    tv = total_variation(stylized.float())
    terms = {
        "content": config.content_weight * content,
        "style": config.style_weight * style,
        "tv": config.tv_weight * tv,
    }
    return terms["content"] + terms["style"] + terms["tv"], terms
