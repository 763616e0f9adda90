"""Shared fixtures: small real images from the bundled examples."""

from __future__ import annotations

import pytest
import torch

from restyle.examples import example_path
from restyle.imaging import image_to_tensor, load_image, resize_tensor


def _example(name: str, side: int) -> torch.Tensor:
    image = image_to_tensor(load_image(example_path(name)))
    h, w = image.shape[-2:]
    scale = side / max(h, w)
    return resize_tensor(image, (round(h * scale), round(w * scale)))


@pytest.fixture(scope="session")
def small_content() -> torch.Tensor:
    """The parrots photo, long side 48 px."""
    return _example("parrots", 48)


@pytest.fixture(scope="session")
def small_style() -> torch.Tensor:
    """The Starry Night, long side 48 px."""
    return _example("starry_night", 48)


@pytest.fixture(scope="session")
def small_style_2() -> torch.Tensor:
    """The Great Wave, long side 48 px."""
    return _example("great_wave", 48)
