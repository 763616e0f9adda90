"""Colour spaces and colour transfer between images.

Images are tensors of shape (B, 3, H, W), RGB, float in [0, 1]. Every function here is pure,
works on any device and float dtype, computes in at least float32 (bf16/fp16 statistics are too
coarse to invert a covariance) and returns the dtype it was given.

The colour-preservation methods follow Gatys et al. 2017, "Preserving color in neural artistic
style transfer": luminance-only transfer (`luminance_transfer`) and linear colour transfer
(`match_color_mean_cov`); `match_histogram` is the usual exact-histogram alternative.
"""

from __future__ import annotations

from typing import get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from restyle.errors import InvalidParameterError
from restyle.postprocess_config import ColorSpace

COLOR_SPACE_CHOICES: tuple[ColorSpace, ...] = get_args(ColorSpace)

# A variance below one 8-bit quantisation step squared is noise, not colour: it is the floor
# for covariance eigenvalues and luminance variance, so flat images neither divide by zero nor
# have their noise blown up to full contrast.
QUANTISATION_VARIANCE = (1.0 / 255.0) ** 2

# NTSC (FCC) YIQ. The I and Q rows sum to exactly zero, so grey maps to I = Q = 0.
_YIQ_FROM_RGB = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.5959, -0.2746, -0.3213],
        [0.2115, -0.5227, 0.3112],
    ],
    dtype=torch.float64,
)
# Full-range BT.601 as in JPEG (JFIF), but with Cb and Cr centred on zero, in [-0.5, 0.5],
# instead of JPEG's +0.5 (128/255) offset: the transform stays linear, and chroma means
# "distance from grey" exactly as I and Q do, so both spaces share every code path.
_YCBCR_FROM_RGB = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ],
    dtype=torch.float64,
)
# Inverses computed from the forward matrices in float64 (not rounded, hand-typed inverses),
# so a round trip is exact up to the working precision.
_RGB_FROM_YIQ = torch.linalg.inv(_YIQ_FROM_RGB)
_RGB_FROM_YCBCR = torch.linalg.inv(_YCBCR_FROM_RGB)

_FORWARD: dict[ColorSpace, Tensor] = {"yiq": _YIQ_FROM_RGB, "ycbcr": _YCBCR_FROM_RGB}
_INVERSE: dict[ColorSpace, Tensor] = {"yiq": _RGB_FROM_YIQ, "ycbcr": _RGB_FROM_YCBCR}


def check_image(x: Tensor, *, name: str) -> None:
    """Raise InvalidParameterError unless `x` is a float tensor of shape (B, 3, H, W)."""
    if not isinstance(x, Tensor):
        raise InvalidParameterError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise InvalidParameterError(f"{name} must have shape (B, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InvalidParameterError(f"{name} must be a float tensor, got dtype {x.dtype}")


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype to compute colour statistics in: float32, or float64 if given float64."""
    return torch.promote_types(x.dtype, torch.float32)


def _check_space(space: str) -> None:
    if space not in COLOR_SPACE_CHOICES:
        raise InvalidParameterError(f"space must be one of {COLOR_SPACE_CHOICES}, got {space!r}")


def _apply_matrix(x: Tensor, matrix: Tensor) -> Tensor:
    """Multiply every pixel's 3-vector by `matrix`, computing in float32 or wider."""
    dtype = compute_dtype(x)
    m = matrix.to(device=x.device, dtype=dtype)  # (3, 3)
    out = torch.einsum("ij,bjhw->bihw", m, x.to(dtype))  # (B, 3, H, W)
    return out.to(x.dtype)


def rgb_to_yiq(x: Tensor) -> Tensor:
    """RGB (B, 3, H, W) to YIQ: Y in [0, 1], I in about [-0.6, 0.6], Q in about [-0.52, 0.52]."""
    check_image(x, name="x")
    return _apply_matrix(x, _YIQ_FROM_RGB)


def yiq_to_rgb(x: Tensor) -> Tensor:
    """YIQ (B, 3, H, W) to RGB; the exact inverse of `rgb_to_yiq`, not clamped."""
    check_image(x, name="x")
    return _apply_matrix(x, _RGB_FROM_YIQ)


def rgb_to_ycbcr(x: Tensor) -> Tensor:
    """RGB (B, 3, H, W) to full-range BT.601 YCbCr: Y in [0, 1], Cb and Cr in [-0.5, 0.5].

    Unlike JPEG files, Cb and Cr carry no +0.5 offset (see `_YCBCR_FROM_RGB`).
    """
    check_image(x, name="x")
    return _apply_matrix(x, _YCBCR_FROM_RGB)


def ycbcr_to_rgb(x: Tensor) -> Tensor:
    """Zero-centred YCbCr (B, 3, H, W) to RGB; the exact inverse of `rgb_to_ycbcr`, not clamped."""
    check_image(x, name="x")
    return _apply_matrix(x, _RGB_FROM_YCBCR)


def _check_batches(source: Tensor, target: Tensor, *, names: tuple[str, str]) -> None:
    if source.shape[0] != target.shape[0]:
        raise InvalidParameterError(
            f"{names[0]} and {names[1]} must have the same batch size, "
            f"got {source.shape[0]} and {target.shape[0]}"
        )


def luminance_transfer(
    stylized: Tensor,
    content: Tensor,
    *,
    space: ColorSpace = "yiq",
    match_luminance: bool = True,
) -> Tensor:
    """Keep the luminance of `stylized` and the chroma of `content` (Gatys et al. 2017, sec. 2).

    With `match_luminance`, the stylized luminance is first shifted and scaled so that its mean
    and standard deviation (per image) equal the content's. The paper applies that histogram
    matching to the style image's luminance before stylizing; applying it to the output instead
    needs no re-run and gives the same effect: the result keeps the content's brightness and
    contrast. If the sizes differ, the content chroma is resized (bilinear, antialiased) to the
    stylized size. Returns the dtype of `stylized`, clamped to [0, 1].
    """
    check_image(stylized, name="stylized")
    check_image(content, name="content")
    _check_batches(stylized, content, names=("stylized", "content"))
    _check_space(space)
    dtype = compute_dtype(stylized)
    forward = _FORWARD[space]
    stylized_luma = _apply_matrix(stylized.to(dtype), forward)[:, :1]  # (B, 1, H, W)
    content_ych = _apply_matrix(content.to(device=stylized.device, dtype=dtype), forward)
    content_luma, content_chroma = content_ych[:, :1], content_ych[:, 1:]  # (B, 1|2, Hc, Wc)

    if match_luminance:
        stylized_luma = _match_mean_std(stylized_luma, content_luma)
    if content_chroma.shape[-2:] != stylized_luma.shape[-2:]:
        content_chroma = F.interpolate(
            content_chroma,
            size=stylized_luma.shape[-2:],
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
    out = _apply_matrix(torch.cat([stylized_luma, content_chroma], dim=1), _INVERSE[space])
    return out.clamp(0.0, 1.0).to(stylized.dtype)


def _match_mean_std(x: Tensor, target: Tensor) -> Tensor:
    """Shift and scale each image of `x` (B, C, H, W) to the mean and std of `target`'s."""
    x_mean = x.mean(dim=(-2, -1), keepdim=True)  # (B, C, 1, 1)
    x_std = x.var(dim=(-2, -1), keepdim=True, correction=0).clamp_min(QUANTISATION_VARIANCE).sqrt()
    t_mean = target.mean(dim=(-2, -1), keepdim=True)
    t_std = target.std(dim=(-2, -1), keepdim=True, correction=0)
    return (x - x_mean) * (t_std / x_std) + t_mean


def _mean_cov(pixels: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image RGB mean (B, 3, 1) and population covariance (B, 3, 3) of pixels (B, 3, N)."""
    mean = pixels.mean(dim=-1, keepdim=True)  # (B, 3, 1)
    centred = pixels - mean  # (B, 3, N)
    cov = centred @ centred.transpose(-2, -1) / pixels.shape[-1]  # (B, 3, 3)
    return mean, cov


def _sym_matrix_power(matrix: Tensor, power: float, *, eps: float) -> Tensor:
    """`matrix ** power` for symmetric positive semi-definite (B, 3, 3), eigenvalues >= eps."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)  # (B, 3), (B, 3, 3)
    scaled = eigenvectors * eigenvalues.clamp_min(eps).pow(power).unsqueeze(-2)  # (B, 3, 3)
    result: Tensor = scaled @ eigenvectors.transpose(-2, -1)
    return result


def _flat_pixels(source: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Validate a source/target pair; both as (B, 3, N) in the compute dtype on source's device."""
    check_image(source, name="source")
    check_image(target, name="target")
    _check_batches(source, target, names=("source", "target"))
    dtype = compute_dtype(source)
    src = source.to(dtype).flatten(2)  # (B, 3, Ns)
    tgt = target.to(device=source.device, dtype=dtype).flatten(2)  # (B, 3, Nt)
    return src, tgt


def match_color_mean_cov(
    source: Tensor, target: Tensor, *, eps: float = QUANTISATION_VARIANCE
) -> Tensor:
    """Recolour `source` so its RGB mean and covariance equal `target`'s (Gatys et al. 2017).

    Linear colour transfer with symmetric matrix square roots, as in Hertzmann et al.'s Image
    Analogies: x' = C_t^(1/2) C_s^(-1/2) (x - mu_s) + mu_t, per image. Eigenvalues of both
    covariances are floored at `eps`, so a constant-colour image (zero covariance) maps to the
    target's mean instead of NaN. Used both to recolour a style image with the content's colours
    before stylizing and to recolour an output. Returns the dtype of `source`, clamped to [0, 1]
    (where clamping bites, the statistics match only approximately).
    """
    src, tgt = _flat_pixels(source, target)  # (B, 3, Ns), (B, 3, Nt)
    src_mean, src_cov = _mean_cov(src)
    tgt_mean, tgt_cov = _mean_cov(tgt)
    transform = _sym_matrix_power(tgt_cov, 0.5, eps=eps) @ _sym_matrix_power(
        src_cov, -0.5, eps=eps
    )  # (B, 3, 3)
    out = transform @ (src - src_mean) + tgt_mean  # (B, 3, Ns)
    return out.reshape(source.shape).clamp(0.0, 1.0).to(source.dtype)


def match_histogram(source: Tensor, target: Tensor) -> Tensor:
    """Per-channel exact histogram matching of `source` to `target`, per image.

    Each source pixel gets the target value at the same quantile: the pixel of rank r among Ns
    sits at quantile (r + 0.5) / Ns, read from the sorted target values with linear
    interpolation when the sizes differ. When they are equal the output is a permutation of
    the target's values. Ties in `source` are broken by position (a stable sort), so the
    result is deterministic. Returns the dtype of `source`.
    """
    src, tgt = _flat_pixels(source, target)  # (B, 3, Ns), (B, 3, Nt)
    n_src, n_tgt = src.shape[-1], tgt.shape[-1]

    order = torch.argsort(src, dim=-1, stable=True)  # (B, 3, Ns): pixel index of each rank
    tgt_sorted = torch.sort(tgt, dim=-1).values  # (B, 3, Nt)
    # Target position of rank r is ((2r + 1) * Nt - Ns) / (2 Ns); integer arithmetic keeps it
    # exact for any image size (float32 positions lose their fraction above 2**24 pixels).
    rank = torch.arange(n_src, device=src.device)  # (Ns,)
    numerator = ((2 * rank + 1) * n_tgt - n_src).clamp(0, 2 * n_src * (n_tgt - 1))
    lower = numerator // (2 * n_src)  # (Ns,)
    frac = (numerator % (2 * n_src)).to(src.dtype) / (2 * n_src)  # (Ns,)
    upper = (lower + 1).clamp_max(n_tgt - 1)
    index_shape = (*tgt_sorted.shape[:2], n_src)
    low_values = tgt_sorted.gather(-1, lower.expand(index_shape))  # (B, 3, Ns)
    high_values = tgt_sorted.gather(-1, upper.expand(index_shape))
    by_rank = torch.lerp(low_values, high_values, frac)  # (B, 3, Ns)
    out = torch.empty_like(src).scatter_(-1, order, by_rank)  # (B, 3, Ns)
    return out.reshape(source.shape).to(source.dtype)
