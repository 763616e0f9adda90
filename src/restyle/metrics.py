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


# --- Artefacts: patterns a network draws that neither the photo nor the painting has. ---
#
# Each measure is a ratio that a clean photo keeps near 1 (streaks, seams) or near 0 (grid),
# so one threshold serves every size and picture. Thresholds sit a little above what the
# evaluation photos themselves score (docs/artefacts.md has the measurements).

STREAK_LIMIT = 1.25  # a photo: 1.0-1.1 either way
GRID_LIMIT = 0.02  # a photo: below 0.005
SEAM_LIMIT = 2.5  # a photo: 1.2-1.8
GRID_PERIODS = (2, 4)  # the strides of two 2x upsamplings (or transposed convolutions)


@dataclass(frozen=True)
class Artefacts:
    """How much of a picture is a pattern of the network rather than of the picture.

    - `streaks`: the larger of (column energy / row energy) and its inverse, for the
      red-green chroma's second differences at the pixel scale. Fine vertical hairlines raise
      the column energy; a photo scores 1.0-1.1.
    - `grid`: the share of the high-pass energy locked to a 2- or 4-pixel grid (checkerboards of
      transposed convolutions or strided decoders); a photo scores under 0.005.
    - `seams`: the strongest full-length straight line (a row or column whose median gradient
      stands out from its neighbours'), as tiling without crossfades leaves; a photo 1.2-1.8.
    """

    streaks: float
    grid: float
    seams: float

    def exceeded(self, photo: Artefacts | None = None) -> dict[str, str]:
        """Each measure past its limit, with its finding worded for a user. With the `photo`'s
        own measures, a limit is raised to 15% above the photo's value where the photo itself
        is that high (a photo of a fence has straight lines of its own)."""
        limits = {"streaks": STREAK_LIMIT, "grid": GRID_LIMIT, "seams": SEAM_LIMIT}
        if photo is not None:
            limits = {k: max(v, 1.15 * getattr(photo, k)) for k, v in limits.items()}
        words = {
            "streaks": "fine colour stripes",
            "grid": "a grid or checkerboard pattern",
            "seams": "straight seams",
        }
        return {
            k: f"{words[k]} ({k} {getattr(self, k):.3g} > {limit:.3g})"
            for k, limit in limits.items()
            if getattr(self, k) > limit
        }

    def flags(self, photo: Artefacts | None = None) -> list[str]:
        """The findings of `exceeded`, in words only."""
        return list(self.exceeded(photo).values())

    def as_dict(self) -> dict[str, float]:
        return {"streaks": self.streaks, "grid": self.grid, "seams": self.seams}


def _planes(image: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) or (3, H, W) in [0, 1] → float64 (3, H, W)."""
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"image: one picture at a time, got batch {image.shape[0]}")
        image = image[0]
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image: (1, 3, H, W) or (3, H, W) RGB, got {tuple(image.shape)}")
    if min(image.shape[-2:]) < 16:
        raise ValueError(f"image: at least 16 px a side, got {tuple(image.shape[-2:])}")
    return image.detach().to("cpu", torch.float64).clamp(0, 1)


def streak_ratio(image: torch.Tensor) -> float:
    """Column against row energy of the red-green chroma's second differences (both ways)."""
    rgb = _planes(image)
    chroma = rgb[0] - rgb[1]  # (H, W)
    across_columns = (chroma[:, 2:] - 2 * chroma[:, 1:-1] + chroma[:, :-2]).abs().mean()
    across_rows = (chroma[2:, :] - 2 * chroma[1:-1, :] + chroma[:-2, :]).abs().mean()
    ratio = float(across_columns / across_rows.clamp_min(1e-12))
    return max(ratio, 1 / ratio) if ratio > 0 else float("inf")


def _high_pass(plane: torch.Tensor) -> torch.Tensor:
    """The plane minus its 3x3 box blur (reflected edges): what varies at the pixel scale."""
    x = plane[None, None]
    blurred = torch.nn.functional.avg_pool2d(
        torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"), 3, stride=1
    )
    return (x - blurred)[0, 0]


def grid_energy(image: torch.Tensor, *, periods: tuple[int, ...] = GRID_PERIODS) -> float:
    """Share of the high-pass energy that repeats on a fixed p×p pixel grid.

    The high-pass picture is averaged over the pixels of each of the p² grid phases: a natural
    picture averages out (its fine detail is not locked to the pixel grid), a checkerboard drawn
    by the network does not. The largest share over the channels and periods.
    """
    rgb = _planes(image)
    worst = 0.0
    for plane in rgb:
        detail = _high_pass(plane)
        energy = detail.square().mean().clamp_min(1e-12)
        for p in periods:
            h, w = (detail.shape[0] // p) * p, (detail.shape[1] // p) * p
            phases = detail[:h, :w].reshape(h // p, p, w // p, p).mean(dim=(0, 2))  # (p, p)
            worst = max(worst, float(phases.square().mean() / energy))
    return worst


def seam_ratio(image: torch.Tensor) -> float:
    """The strongest straight full-length line: per column (row), the median over its length of
    the gradient across it, against the median of its 16 neighbours'. Edges of objects are not
    straight over the whole picture, so they move a column's median little; a seam moves it."""
    rgb = _planes(image)
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    worst = 0.0
    for plane in (luma, luma.T):
        profile = (plane[:, 1:] - plane[:, :-1]).abs().median(dim=0).values  # (W - 1,)
        padded = torch.nn.functional.pad(profile[None, None], (8, 8), mode="replicate")[0, 0]
        windows = padded.unfold(0, 17, 1)  # (W - 1, 17): each column with 8 on either side
        around = torch.cat([windows[:, :8], windows[:, 9:]], dim=1).median(dim=1).values
        # A floor of half an 8-bit step: flat skies quantise to gradients of 0.
        worst = max(worst, float((profile / around.clamp_min(0.5 / 255)).max()))
    return worst


def artefacts(image: torch.Tensor) -> Artefacts:
    """All three measures of one picture (1, 3, H, W) or (3, H, W) in [0, 1]."""
    return Artefacts(streaks=streak_ratio(image), grid=grid_energy(image), seams=seam_ratio(image))
