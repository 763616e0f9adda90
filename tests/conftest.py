"""Shared fixtures: small real images from the bundled examples, a folder of training photos,
Debian's headless Chromium (driven by Playwright) for the browser tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

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


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six synthetic 'photos' of different sizes and formats: smooth colour fields with edges."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(96, 72), (80, 80), (120, 64), (50, 70), (64, 96), (100, 90)]):
        coarse = rng.random((4, 4, 3))
        field = np.kron(coarse, np.ones((h // 4 + 1, w // 4 + 1, 1)))[:h, :w]
        image = Image.fromarray((field * 255).astype(np.uint8))
        suffix = ".png" if i % 2 else ".jpg"
        (root / ("sub" if i > 3 else "")).mkdir(exist_ok=True)
        image.save(root / ("sub" if i > 3 else "") / f"photo{i}{suffix}")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, with a fake camera (a moving test pattern) that needs no
    permission prompt; skips where Playwright or chromium is missing."""
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium_path = shutil.which("chromium")
    if chromium_path is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path,
            args=["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
        )
        yield chromium
        chromium.close()
