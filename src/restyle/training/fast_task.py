"""What the fast engine learns: a network for one painting, with Johnson et al.'s loss.

Two starting points share the loss: `FastStyleTask` trains a `TransformNet` from scratch;
`RefineStyleTask` starts from the arbitrary network's pass for the painting (MicroAST with the
painting's style signals folded in) and fine-tunes that, which reaches a given quality far
sooner (see `docs/model-zoo.md`).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restyle.errors import InvalidParameterError
from restyle.imaging import resize_tensor_to_long_side
from restyle.losses import gram, grid_phase_variance, relative_distance, total_variation
from restyle.metrics import CONTENT_LAYER
from restyle.models.checkpoint import save_styled_microast, save_transform_net
from restyle.models.microast import StyledMicroAST
from restyle.models.transform_net import TransformNet, TransformNetConfig
from restyle.training.config import FastLossConfig, as_dict
from restyle.training.content_control import ContentControl
from restyle.vgg import VGG19Features
from restyle.vgg_layers import LAYER_NAMES


class _PaintingTask:
    """A network for one painting: its outputs match `style`'s Grams and the photo's content."""

    engine = "fast"
    channels_last_on_cpu = False  # whether the network trains faster in channels-last on a CPU

    def __init__(
        self,
        style: torch.Tensor,
        *,
        loss: FastLossConfig,
        style_info: dict[str, Any],
        vgg_weights: str | os.PathLike[str] | None = None,
    ) -> None:
        self.style = style  # (1, 3, H, W) in [0, 1]
        self.loss_config = loss
        self.style_info = style_info
        self.vgg_weights = vgg_weights
        self.vgg: VGG19Features | None = None
        self.target_grams: dict[str, torch.Tensor] = {}
        self.style_scales: dict[str, float] = {}
        # A target given, or (content_hold, never both) measured over the first steps.
        self.content_control = (
            ContentControl(loss.content_target, warmup=loss.content_hold)
            if loss.content_target or loss.content_hold
            else None
        )

    def setup(self, device: torch.device, *, image_size: int, channels_last: bool) -> None:
        """Load VGG19 on `device` and compute the painting's target Grams once."""
        wanted = set(self.loss_config.content_layers) | set(self.loss_config.style_layers)
        if self.content_control is not None:
            wanted.add(CONTENT_LAYER)
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
        self.style_scales = balance_scales(self.target_grams, self.loss_config.style_balance)

    def loss(
        self, model: nn.Module, photos: torch.Tensor, *, step: int = 0, rank: int = 0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted loss of `model` on a batch of photos (B, 3, S, S) in [0, 1], and its terms."""
        assert self.vgg is not None, "setup() first"
        control = self.content_control
        loss, terms = johnson_loss(
            self.vgg,
            model(photos),
            photos,
            self.target_grams,
            self.loss_config,
            self.style_scales,
            content_factor=1.0 if control is None else control.factor,
        )
        if control is not None:
            control.update(float(terms["content_distance"]))
        return loss, terms

    def training_state(self) -> dict[str, Any]:
        """What the loss adapted while training, for a resumed run to go on from."""
        return {} if self.content_control is None else {"content": self.content_control.state()}

    def restore_training_state(self, state: dict[str, Any]) -> None:
        if self.content_control is not None and isinstance(state.get("content"), dict):
            self.content_control.restore(state["content"])

    def sample(self, model: nn.Module, photos: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = model(photos)
        return out


def gram_energies(grams: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean square of each Gram (floored: a flat black painting has none)."""
    return {layer: max(float(g.square().mean()), 1e-12) for layer, g in grams.items()}


def balance_scales(target_grams: dict[str, torch.Tensor], balance: float) -> dict[str, float]:
    """Per style layer, (E_max / E_layer)^balance with E a target Gram's mean square: 1 for the
    layer the plain loss already weighs most, more for the layers it neglects."""
    if balance == 0 or not target_grams:
        return {}
    energy = gram_energies(target_grams)
    strongest = max(energy.values())
    return {layer: (strongest / e) ** balance for layer, e in energy.items()}


class FastStyleTask(_PaintingTask):
    """Train a transform network from scratch for one painting."""

    def __init__(
        self,
        style: torch.Tensor,
        *,
        network: TransformNetConfig,
        loss: FastLossConfig,
        style_info: dict[str, Any],
        vgg_weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(style, loss=loss, style_info=style_info, vgg_weights=vgg_weights)
        self.network = network

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
    *,
    content_factor: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Johnson et al.'s perceptual loss of a stylized batch, and its weighted terms.

    Content: MSE of `config.content_layers` features against the photos', times
    `content_factor` (a `ContentControl`'s); style: MSE of Grams against `target_grams` (each
    (1, C, C)), each layer's times `style_scales[layer]` if given; total variation of the output.
    With `config.content_target`, the terms also hold the batch's mean content distance at
    relu4_2 and the factor, not part of the loss.
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
        "content": config.content_weight * content_factor * content,
        "style": config.style_weight * style,
        "tv": config.tv_weight * tv,
    }
    loss = terms["content"] + terms["style"] + terms["tv"]
    if config.grid_weight:
        # Scaled by the perceptual terms so the weight is a fraction of them whatever their size.
        scale = (terms["content"] + terms["style"]).detach()
        terms["grid"] = config.grid_weight * scale * grid_phase_variance(stylized.clamp(0, 1))
        loss = loss + terms["grid"]
    if config.content_target or config.content_hold:
        distance = relative_distance(
            features[CONTENT_LAYER].detach().float(),
            photo_features[CONTENT_LAYER].float(),
        )
        terms["content_distance"] = distance.mean()
        terms["content_factor"] = zero + content_factor
    return loss, terms


class RefineStyleTask(_PaintingTask):
    """Fine-tune the arbitrary network's pass for one painting (`--init arbitrary`).

    The start is MicroAST with the painting's style signals (taken at `signal_size`, the
    arbitrary engine's analysis) folded into its weights: a plain feed-forward network that
    already stylizes every photo reasonably. Johnson et al.'s loss against the painting then
    sharpens it toward that one painting. `frozen` names the parts left as they are ("encoder":
    the content encoder, whose features the decoder was trained to read).
    """

    channels_last_on_cpu = True  # depthwise convolutions: ~7x faster forward+backward

    def __init__(
        self,
        style: torch.Tensor,
        *,
        loss: FastLossConfig,
        style_info: dict[str, Any],
        signal_size: int = 0,
        frozen: tuple[str, ...] = (),
        arbitrary_model: str = "",
        vgg_weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(style, loss=loss, style_info=style_info, vgg_weights=vgg_weights)
        unknown = set(frozen) - set(REFINE_PARTS)
        if unknown:
            raise InvalidParameterError(
                f"frozen: unknown part(s) {sorted(unknown)}; parts: {', '.join(REFINE_PARTS)}"
            )
        if signal_size and not 64 <= signal_size <= 2048:
            raise InvalidParameterError(
                f"signal_size: 0 (the network's own) or 64..2048 px, got {signal_size}"
            )
        self.signal_size, self.frozen = signal_size, tuple(sorted(frozen))
        from restyle.engines.arbitrary import ArbitraryEngine
        from restyle.engines.arbitrary_config import ArbitrarySetup

        # The engine is only the starting point's maker; it is not kept.
        engine = ArbitraryEngine(ArbitrarySetup(network="microast", model=arbitrary_model))
        _, start = engine.network(style, style_size=signal_size)
        assert isinstance(start, StyledMicroAST)
        self.start = start
        self.init_info = {
            "network": "microast",
            "sha256": engine.model_sha256,
            "signal_size": signal_size or engine.trained_style_size,
            "frozen": list(self.frozen),
        }

    def describe(self) -> dict[str, Any]:
        """What defines this task; a resumed run must match it."""
        return {
            "engine": self.engine,
            "network": {"design": "microast"},
            "init": self.init_info,
            "loss": as_dict(self.loss_config),
            "style": self.style_info,
        }

    def build_model(self) -> nn.Module:
        model = copy.deepcopy(self.start).train().requires_grad_(True)
        for part in self.frozen:
            getattr(model, part).requires_grad_(False)
        return model

    def save_model(
        self, path: str | os.PathLike[str], model: nn.Module, info: dict[str, Any]
    ) -> Path:
        assert isinstance(model, StyledMicroAST)
        return save_styled_microast(path, model, info={**self.describe(), **info})


# The parts (attributes of `StyledMicroAST`) that `RefineStyleTask(frozen=...)` may leave untrained.
REFINE_PARTS = ("encoder", "head")
