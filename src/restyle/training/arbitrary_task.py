"""What the arbitrary engine learns: a MetaNet that writes a transform network for any painting.

Every step draws one painting from the style set, augments it (random scale, crop and flip:
the set is small, a few hundred images), and trains the MetaNet and the shared layers so that
the network it writes for that painting stylizes the batch of photos well under Johnson et al.'s
loss. The painting of a step is a pure function of (seed, rank, step), like the photo crops,
so runs repeat and resume exactly.

The Gram loss of a painting scales with its contrast: across the style set it spans two orders
of magnitude, so unnormalised a few high-contrast paintings dominate the gradient and the MetaNet
learns one average style for all. Each painting's style loss per layer is therefore divided by
its own Gram energy (mean square) and multiplied by the training set's geometric mean of that
energy: every painting weighs alike, and `style_weight` means what it means for the fast engine.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from restyle.errors import InvalidParameterError
from restyle.imaging import resize_tensor_to_long_side
from restyle.losses import gram
from restyle.models.checkpoint import save_meta_net
from restyle.models.meta_net import STYLE_LAYERS, MetaNet, MetaNetConfig, style_statistics
from restyle.training.config import FastLossConfig, as_dict
from restyle.training.data import data_digest, list_images
from restyle.training.fast_task import gram_energies, johnson_loss
from restyle.vgg import VGG19Features
from restyle.vgg_layers import LAYER_NAMES

# Paintings are kept decoded at this multiple of the style crop: enough room to scale and crop.
_KEEP_SCALE = 2.0
_MAX_ZOOM = 2.0  # the crop covers between 1/2 and all of the painting's short side


def split_styles(files: list[Path], *, holdout: float, seed: int) -> tuple[list[Path], list[Path]]:
    """(training, held-out) paintings: a seeded shuffle, so the split is part of the recipe."""
    if not 0 <= holdout < 1:
        raise InvalidParameterError(f"holdout: a fraction in [0, 1), got {holdout}")
    shuffled = sorted(files)
    random.Random(seed).shuffle(shuffled)
    count = round(len(shuffled) * holdout)
    held_out, training = sorted(shuffled[:count]), sorted(shuffled[count:])
    if not training:
        raise InvalidParameterError("styles: no painting left for training after the hold-out")
    return training, held_out


class ArbitraryStyleTask:
    """Train a MetaNet on a folder of paintings (see the module's docstring)."""

    engine = "arbitrary"

    def __init__(
        self,
        styles: str | os.PathLike[str],
        *,
        meta: MetaNetConfig,
        loss: FastLossConfig,
        holdout: float = 0.1,
        seed: int = 0,
        vgg_weights: str | os.PathLike[str] | None = None,
    ) -> None:
        if loss.style_balance:
            # Its Gram terms are already scaled per painting to a reference painting's energy.
            raise InvalidParameterError("style_balance: only for fast networks (train fast)")
        if loss.content_target or loss.content_hold:
            raise InvalidParameterError("content_target: only for fast networks (train fast)")
        self.styles_dir = Path(styles)
        files = list_images(self.styles_dir)
        self.training_styles, self.held_out = split_styles(files, holdout=holdout, seed=seed)
        self.meta_config = meta
        self.loss_config = loss
        self.holdout = holdout
        self.seed = seed
        self.styles_sha256 = data_digest(self.styles_dir, files)
        self.vgg_weights = vgg_weights
        self.vgg: VGG19Features | None = None
        self.paintings: list[torch.Tensor] = []
        self.device = torch.device("cpu")
        self.crop = 0
        self.reference_energy: dict[str, float] = {}
        self.painting_statistics: torch.Tensor | None = None

    def describe(self) -> dict[str, Any]:
        """What defines this task; a resumed run must match it."""
        return {
            "engine": self.engine,
            "meta": self.meta_config.to_dict(),
            "loss": as_dict(self.loss_config),
            "styles": {
                "directory": self.styles_dir.name,
                "images": len(self.training_styles) + len(self.held_out),
                "sha256": self.styles_sha256,
                "holdout": self.holdout,
                "held_out": [p.relative_to(self.styles_dir).as_posix() for p in self.held_out],
            },
            "style_normalization": "per painting, to the training set's geometric mean energy",
        }

    def build_model(self) -> nn.Module:
        """A new MetaNet, its input standardised on the training paintings (setup() first)."""
        model = MetaNet(self.meta_config)
        if self.painting_statistics is not None:
            model.standardise_inputs(self.painting_statistics.cpu())
        return model

    def setup(self, device: torch.device, *, image_size: int, channels_last: bool) -> None:
        """Load VGG19 on `device` and decode the training paintings once (uint8, on the CPU)."""
        config = self.loss_config
        wanted = set(config.content_layers) | set(config.style_layers) | set(STYLE_LAYERS)
        layers = tuple(name for name in LAYER_NAMES if name in wanted)
        vgg = VGG19Features(layers, weights_path=self.vgg_weights).to(device)
        if channels_last:
            vgg = vgg.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.vgg, self.device = vgg, device
        self.crop = config.style_size or image_size
        keep = round(self.crop * _KEEP_SCALE)
        self.paintings = []
        for path in self.training_styles:
            with Image.open(path) as file:
                image = ImageOps.exif_transpose(file).convert("RGB")
            scale = keep / min(image.size)
            if scale < 1:
                size = (round(image.width * scale), round(image.height * scale))
                image = image.resize(size, Image.Resampling.LANCZOS)
            pixels = np.asarray(image, dtype=np.uint8).copy()
            self.paintings.append(torch.from_numpy(pixels).permute(2, 0, 1))
        self.reference_energy = self._reference_energy()

    def _reference_energy(self) -> dict[str, float]:
        """Per style layer, the geometric mean over training paintings of their Gram energy.

        Also keeps every training painting's statistics, which standardise a new MetaNet's input.
        """
        logs: dict[str, float] = dict.fromkeys(self.loss_config.style_layers, 0.0)
        statistics = []
        for painting in self.paintings:
            side = min(painting.shape[-2:])
            painting_statistics, grams = self.targets(
                self._square(painting, 0, 0, side, flip=False)
            )
            statistics.append(painting_statistics)
            for layer, energy in gram_energies(grams).items():
                logs[layer] += math.log(energy)
        self.painting_statistics = torch.cat(statistics)
        return {layer: math.exp(total / len(self.paintings)) for layer, total in logs.items()}

    def style_of_step(self, step: int, rank: int) -> torch.Tensor:
        """The augmented painting (1, 3, crop, crop) in [0, 1] that step `step` trains on."""
        rng = random.Random(f"{self.seed}:{rank}:{step}")
        painting = self.paintings[rng.randrange(len(self.paintings))]
        height, width = painting.shape[-2:]
        side = min(height, width)
        # Zoom: crop a square of side/zoom, then resize it to the crop size.
        window = max(8, round(side / rng.uniform(1.0, _MAX_ZOOM)))
        top, left = rng.randint(0, height - window), rng.randint(0, width - window)
        return self._square(painting, top, left, window, flip=rng.random() < 0.5)

    def _square(
        self, painting: torch.Tensor, top: int, left: int, window: int, *, flip: bool
    ) -> torch.Tensor:
        """A square of the (3, H, W) uint8 painting, resized to the crop: (1, 3, crop, crop)."""
        patch = painting[:, top : top + window, left : left + window].float().div(255)
        patch = nn.functional.interpolate(
            patch.unsqueeze(0), size=(self.crop, self.crop), mode="bilinear", antialias=True
        )
        if flip:
            patch = patch.flip(-1)
        return patch.clamp(0, 1)

    def targets(self, painting: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The painting's MetaNet input (1, 1920) and its target Grams."""
        assert self.vgg is not None, "setup() first"
        with torch.no_grad():
            features = self.vgg(painting.to(self.device))
            statistics = style_statistics(features)
            layers = self.loss_config.style_layers
            grams = {layer: gram(features[layer].float()) for layer in layers}
        return statistics, grams

    def loss(
        self, model: nn.Module, photos: torch.Tensor, *, step: int, rank: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        assert self.vgg is not None, "setup() first"
        statistics, grams = self.targets(self.style_of_step(step, rank))
        scales = {
            layer: self.reference_energy[layer] / energy
            for layer, energy in gram_energies(grams).items()
        }
        stylized = model(photos, statistics)
        return johnson_loss(self.vgg, stylized, photos, grams, self.loss_config, scales)

    def sample(self, model: nn.Module, photos: torch.Tensor) -> torch.Tensor:
        """Photo i in the style of training painting i (whole, not augmented)."""
        outputs = []
        for i, photo in enumerate(photos):
            painting = self.paintings[i % len(self.paintings)].float().div(255).unsqueeze(0)
            statistics, _ = self.targets(resize_tensor_to_long_side(painting, self.crop))
            outputs.append(model(photo.unsqueeze(0), statistics))
        return torch.cat(outputs)

    def save_model(
        self, path: str | os.PathLike[str], model: nn.Module, info: dict[str, Any]
    ) -> Path:
        assert isinstance(model, MetaNet)
        return save_meta_net(path, model, info={**self.describe(), **info})
