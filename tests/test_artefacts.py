"""The artefact measures (restyle.metrics) and the grid filter, on synthetic and real pictures."""

from __future__ import annotations

import math

import pytest
import torch

from restyle.examples import example_path
from restyle.imaging import as_tensor, resize_tensor_to_long_side
from restyle.losses import grid_phase_variance
from restyle.metrics import (
    GRID_LIMIT,
    SEAM_LIMIT,
    STREAK_LIMIT,
    artefacts,
    grid_energy,
    seam_ratio,
    streak_ratio,
)
from restyle.models.grid_filter import GridFilter, notch_kernel


def gradient(height: int = 96, width: int = 128) -> torch.Tensor:
    """A smooth colour gradient with mild, isotropic fine texture (seeded)."""
    y = torch.linspace(0, 1, height).view(-1, 1)
    x = torch.linspace(0, 1, width).view(1, -1)
    base = torch.stack([0.2 + 0.6 * x + 0 * y, 0.3 + 0.4 * y + 0 * x, 0.5 + 0.2 * (x - y)])
    noise = torch.randn(3, height, width, generator=torch.Generator().manual_seed(0))
    blurred = torch.nn.functional.avg_pool2d(noise[None], 3, 1, 1)[0]
    return (base + 0.03 * blurred).clamp(0, 1)[None]


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return resize_tensor_to_long_side(as_tensor(example_path("parrots")), 256)


def with_column_stripes(image: torch.Tensor, amplitude: float = 0.02) -> torch.Tensor:
    """1-px red/green hairlines every 4 columns, as the decoder drew them (no mean change)."""
    out = image.clone()
    out[:, 0, :, 2::4] += amplitude
    out[:, 1, :, 2::4] -= amplitude
    out[:, 0, :, 0::4] -= amplitude
    out[:, 1, :, 0::4] += amplitude
    return out.clamp(0, 1)


def with_checkerboard(image: torch.Tensor, amplitude: float = 0.02) -> torch.Tensor:
    h, w = image.shape[-2:]
    sign = (torch.arange(h).view(-1, 1) + torch.arange(w).view(1, -1)) % 2 * 2 - 1
    return (image + amplitude * sign).clamp(0, 1)


def with_seam(image: torch.Tensor, offset: float = 0.04) -> torch.Tensor:
    out = image.clone()
    out[..., image.shape[-1] // 2 :] += offset
    return out.clamp(0, 1)


def test_clean_pictures_pass(photo: torch.Tensor) -> None:
    for image in (gradient(), photo):
        found = artefacts(image)
        assert found.flags() == [], found
        assert found.streaks < 1.15 and found.grid < 0.005 and found.seams < SEAM_LIMIT


def test_column_stripes_are_streaks(photo: torch.Tensor) -> None:
    for image in (gradient(), photo):
        assert streak_ratio(with_column_stripes(image)) > STREAK_LIMIT
        assert streak_ratio(with_column_stripes(image).transpose(-1, -2)) > STREAK_LIMIT
        assert any("stripes" in f for f in artefacts(with_column_stripes(image)).flags())


def test_checkerboard_is_grid(photo: torch.Tensor) -> None:
    for image in (gradient(), photo):
        assert grid_energy(image) < GRID_LIMIT
        assert grid_energy(with_checkerboard(image)) > 10 * GRID_LIMIT
    # A checkerboard is as strong along columns as along rows: not a streak.
    assert streak_ratio(with_checkerboard(gradient())) < STREAK_LIMIT


def test_straight_seam(photo: torch.Tensor) -> None:
    for image in (gradient(), photo):
        assert seam_ratio(with_seam(image)) > SEAM_LIMIT
        assert seam_ratio(with_seam(image.transpose(-1, -2))) > SEAM_LIMIT


def test_photo_reference_raises_limits() -> None:
    striped = artefacts(with_column_stripes(gradient(), 0.01))
    assert striped.flags()
    # Against a photo that has as many stripes itself, the result adds none.
    assert not [f for f in striped.flags(photo=striped) if "stripes" in f]


def test_measures_reject_bad_shapes() -> None:
    with pytest.raises(ValueError, match="batch"):
        artefacts(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="16 px"):
        artefacts(torch.zeros(1, 3, 8, 32))


def test_notch_kernel_response() -> None:
    kernel = notch_kernel()
    n = kernel.numel()

    def response(omega: float) -> float:
        return sum(float(kernel[i]) * math.cos(omega * (i - n // 2)) for i in range(n))

    assert kernel.sum().item() == pytest.approx(1.0)
    assert torch.allclose(kernel, kernel.flip(0))  # symmetric: no shift
    assert response(math.pi / 2) == pytest.approx(0.0, abs=1e-9)
    assert response(math.pi) == pytest.approx(0.0, abs=1e-9)
    for omega in (0.1, 0.4, 0.6, 0.9):
        assert response(omega * math.pi) == pytest.approx(1.0, abs=0.05)


def test_grid_filter_removes_the_grid_and_keeps_the_picture(photo: torch.Tensor) -> None:
    striped = with_column_stripes(photo, 0.02)
    checker = with_checkerboard(photo, 0.02)
    grid_filter = GridFilter()
    for spoiled in (striped, checker):
        cleaned = grid_filter(spoiled)
        assert grid_energy(cleaned.clamp(0, 1)) < GRID_LIMIT
        # Linear: what it does to the spoiled picture beyond what it does to the photo is
        # what is left of the pattern (a little, where clamping cut it).
        left = (cleaned - grid_filter(photo)).abs().mean()
        assert left < 0.1 * (spoiled - photo).abs().mean()
    # The photo's own detail at the grid's frequencies is little: 1-2 levels of 255 on average.
    assert (grid_filter(photo) - photo).abs().mean() < 0.015


def test_grid_phase_variance_is_a_penalty(photo: torch.Tensor) -> None:
    clean = float(grid_phase_variance(photo))
    striped = with_column_stripes(photo, 0.02).requires_grad_(True)
    penalty = grid_phase_variance(striped)
    assert float(penalty.detach()) > 10 * clean
    penalty.backward()
    assert striped.grad is not None and striped.grad.abs().sum() > 0
