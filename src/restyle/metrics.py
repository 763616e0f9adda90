"""VGG19 distances that say how much of the photo and how much of the painting a result holds.

The numbers the docs and benchmarks report, defined once:
- content distance: ‖F(result) − F(photo)‖² / ‖F(photo)‖² at relu4_2 (0: the photo's content
  untouched; grows as the content dissolves);
- style distance: the mean over relu1_1..relu5_1 of ‖G(result) − G(painting)‖² / ‖G(painting)‖²,
  with Grams normalised by C·H·W and the painting resized to the result's area, so brush
  strokes are compared at the scale they are rendered (0: the painting's texture statistics).
Both are relative, so they compare across images and sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from restyle.imaging import resize_tensor
from restyle.losses import gram, relative_distance
from restyle.vgg import VGG19Features

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class Distances:
    content: float
    style: float


class StyleMetrics:
    """Loads VGG19 once; `distances(result, photo, painting)` for any number of results."""

    def __init__(self, *, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        layers = (*STYLE_LAYERS[:4], CONTENT_LAYER, STYLE_LAYERS[4])
        self.vgg = VGG19Features(layers).to(self.device)

    @torch.no_grad()
    def distances(
        self, result: torch.Tensor, photo: torch.Tensor, painting: torch.Tensor
    ) -> Distances:
        """All (1, 3, H, W) in [0, 1]; the photo is resized to the result's size."""
        size = (result.shape[-2], result.shape[-1])
        photo = resize_tensor(photo.float(), size) if photo.shape[-2:] != size else photo
        area = size[0] * size[1]
        h, w = painting.shape[-2:]
        scale = (area / (h * w)) ** 0.5
        painting = resize_tensor(
            painting.float(), (max(1, round(h * scale)), max(1, round(w * scale)))
        )
        out = self.vgg(result.float().to(self.device))
        ref = self.vgg(photo.to(self.device))
        art = self.vgg(painting.to(self.device))
        content = relative_distance(out[CONTENT_LAYER], ref[CONTENT_LAYER])[0]
        style = torch.stack(
            [
                (gram(out[layer]) - gram(art[layer])).square().sum()
                / gram(art[layer]).square().sum()
                for layer in STYLE_LAYERS
            ]
        ).mean()
        return Distances(content=float(content), style=float(style))
