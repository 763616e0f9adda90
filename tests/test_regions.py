"""Styles by region, the shared pieces (`restyle.regions`): masks fitted to the output and
feathered, results composited without a seam, bad masks refused clearly."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from restyle.api import stylize_tensor
from restyle.cli import main
from restyle.cli.stylize import parse_region
from restyle.errors import InvalidImageError, InvalidParameterError
from restyle.examples import example_path
from restyle.imaging import as_tensor, resize_tensor, save_image
from restyle.regions import MAX_REGIONS, composite, default_feather, feather, load_mask


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def half_mask(width: int, height: int) -> bytes:
    """White on the right half, black on the left."""
    image = Image.new("L", (width, height), 0)
    image.paste(255, (width // 2, 0, width, height))
    return png(image)


@pytest.fixture(scope="module")
def two_styles() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The parrots at 96 × 128 stylized by two zoo styles with the fast engine (real weights)."""
    photo = resize_tensor(as_tensor(example_path("parrots")), (96, 128))
    first = stylize_tensor(photo, "starry-night", method="fast")
    second = stylize_tensor(photo, "the-scream", method="fast")
    return photo, first, second


def test_a_half_mask_gives_each_style_its_half_and_no_seam(
    two_styles: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    _, first, second = two_styles
    height, width = first.shape[-2:]
    mask, warning = load_mask(half_mask(width, height), (height, width))
    assert warning is None and mask.shape == (1, 1, height, width)
    sigma = default_feather((height, width))
    result = composite(first, [(feather(mask, sigma), second)])
    # Away from the seam (beyond 4 sigma) each half is its style's result.
    margin = int(4 * sigma) + 1
    left, right = slice(0, width // 2 - margin), slice(width // 2 + margin, width)
    assert (result[..., left] - first[..., left]).abs().max() < 1e-3
    assert (result[..., right] - second[..., right]).abs().max() < 1e-3
    # No step at the seam: the change from column to column there stays within a small factor
    # of the image's typical one (a hard cut is several times larger).
    steps = (result[..., 1:] - result[..., :-1]).abs().mean(dim=(0, 1, 2))
    seam = steps[width // 2 - margin : width // 2 + margin].max()
    assert seam < 2.5 * steps.median(), (float(seam), float(steps.median()))
    hard = composite(first, [(mask, second)])
    hard_steps = (hard[..., 1:] - hard[..., :-1]).abs().mean(dim=(0, 1, 2))
    assert hard_steps[width // 2 - 1] > seam  # the test can fail: a hard cut would


def test_regions_lay_over_in_order_and_none_keeps_the_photo(
    two_styles: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    photo, first, second = two_styles
    everywhere = torch.ones(1, 1, *first.shape[-2:])
    assert torch.equal(composite(first, [(everywhere, second), (everywhere, photo)]), photo)
    assert torch.equal(composite(first, []), first)


def test_a_mask_of_another_shape_is_stretched_with_a_warning() -> None:
    mask, warning = load_mask(half_mask(64, 64), (48, 96), name="mask.png")
    assert mask.shape == (1, 1, 48, 96)
    assert warning is not None and "mask.png" in warning and "64×64" in warning
    assert float(mask[..., :, :40].max()) < 0.05 and float(mask[..., :, 56:].min()) > 0.95


def test_bad_masks_are_refused_with_their_name() -> None:
    black = png(Image.new("L", (32, 32), 0))
    with pytest.raises(InvalidParameterError, match=r"sky\.png: the mask is black everywhere"):
        load_mask(black, (32, 32), name="sky.png")
    with pytest.raises(InvalidImageError):
        load_mask(b"not an image at all", (32, 32), name="notes.txt")
    image = torch.zeros(1, 3, 8, 8)
    too_many = [(torch.ones(1, 1, 8, 8), image)] * (MAX_REGIONS + 1)
    with pytest.raises(InvalidParameterError, match=f"at most {MAX_REGIONS}"):
        composite(image, too_many)
    with pytest.raises(InvalidParameterError, match="must be"):
        composite(image, [(torch.ones(1, 1, 4, 4), image)])


def test_the_library_and_the_cli_stylize_by_region(tmp_path: Path) -> None:
    """A half mask through `stylize_tensor(regions=...)` and `restyle stylize --region`: each
    half is its style's result away from the seam; the photo kept where the style is none."""
    photo = resize_tensor(as_tensor(example_path("parrots")), (96, 128))
    mask = tmp_path / "right.png"
    mask.write_bytes(half_mask(128, 96))
    first = stylize_tensor(photo, "starry-night", method="fast")
    second = stylize_tensor(photo, "the-scream", method="fast")
    both = stylize_tensor(photo, "starry-night", method="fast", regions=[(mask, "the-scream")])
    margin = int(4 * default_feather((96, 128))) + 1
    assert (both[..., : 64 - margin] - first[..., : 64 - margin]).abs().max() < 1e-3
    assert (both[..., 64 + margin :] - second[..., 64 + margin :]).abs().max() < 1e-3
    kept = stylize_tensor(photo, "starry-night", method="fast", regions=[(mask, None)])
    assert (kept[..., 64 + margin :] - photo[..., 64 + margin :]).abs().max() < 1e-3
    with pytest.raises(InvalidParameterError, match="gatys engine's masked styles"):
        stylize_tensor(photo, "starry-night", method="gatys", regions=[(mask, "the-scream")])
    # The command line: the same picture.
    source = tmp_path / "photo.png"
    save_image(photo, source)
    out = tmp_path / "out.png"
    code = main(["stylize", str(source), "-s", "starry-night", "--region",
                 f"{mask}=the-scream", "-o", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    expected = stylize_tensor(
        as_tensor(source), "starry-night", method="fast", regions=[(mask, "the-scream")]
    )  # the photo as the command read it: 8-bit
    assert (as_tensor(out) - expected).abs().max() < 2 / 255  # the output's 8-bit rounding
    with pytest.raises(InvalidParameterError, match="MASK=STYLE"):
        parse_region("just-a-mask.png")
