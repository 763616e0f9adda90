"""`restyle.stylize` from Python: inputs of every kind, post-processing, errors."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

import restyle
from restyle.color import rgb_to_yiq
from restyle.examples import example_path


def test_stylize_accepts_paths_bytes_pil_and_tensors(small_content, small_style) -> None:
    style_bytes = example_path("starry_night").read_bytes()
    pil = Image.open(io.BytesIO(style_bytes))
    options = dict(size=24, iterations=2, scales=1, seed=0, device="cpu")
    from_path = restyle.stylize(example_path("parrots"), example_path("starry_night"), **options)
    from_bytes = restyle.stylize(example_path("parrots").read_bytes(), style_bytes, **options)
    from_pil = restyle.stylize(example_path("parrots"), pil, **options)
    assert from_path.size == (24, 24)
    assert from_path.tobytes() == from_bytes.tobytes() == from_pil.tobytes()
    out = restyle.stylize_tensor(small_content, small_style, **options)
    assert out.shape == (1, 3, 24, 24)


def test_strength_zero_returns_the_content(small_content, small_style) -> None:
    out = restyle.stylize_tensor(
        small_content, small_style, size=48, iterations=3, scales=1, strength=0.0, device="cpu"
    )
    assert torch.allclose(out, small_content, atol=1e-5)


def test_preserve_color_keeps_content_chroma(small_content, small_style) -> None:
    plain = restyle.stylize_tensor(
        small_content, small_style, size=48, iterations=8, scales=1, seed=0, device="cpu"
    )
    kept = restyle.stylize_tensor(
        small_content,
        small_style,
        size=48,
        iterations=8,
        scales=1,
        seed=0,
        preserve_color="luminance",
        device="cpu",
    )
    chroma = lambda x: rgb_to_yiq(x)[:, 1:]  # noqa: E731
    err_kept = (chroma(kept) - chroma(small_content)).abs().mean()
    err_plain = (chroma(plain) - chroma(small_content)).abs().mean()
    assert err_kept < 0.01
    assert err_kept < 0.3 * err_plain


def test_unknown_method_and_option_are_clear_errors(small_content, small_style) -> None:
    with pytest.raises(restyle.InvalidParameterError, match="method"):
        restyle.stylize(small_content, small_style, method="neural-magic")
    with pytest.raises(restyle.InvalidParameterError, match="bogus_option"):
        restyle.stylize(small_content, small_style, bogus_option=1)


def test_bad_image_is_restyle_error() -> None:
    with pytest.raises(restyle.InvalidImageError):
        restyle.stylize(b"not an image", example_path("starry_night"), iterations=1)


@pytest.mark.parametrize("mode", ["mean_cov", "histogram"])
def test_colour_matching_modes_recolour_styles_before_stylizing(
    mode: str, small_content, small_style
) -> None:
    from restyle.api import recolor_styles

    # The Starry Night is blue (mean R 0.30, B 0.43) and the parrots warm (R 0.55, B 0.34).
    (recoloured,) = recolor_styles([small_style], small_content, mode)
    for channel in range(3):
        got = recoloured[0, channel].mean().item()
        assert got == pytest.approx(small_content[0, channel].mean().item(), abs=0.02)
    assert recoloured[0, 0].mean() > recoloured[0, 2].mean()
    assert recolor_styles([small_style], small_content, "luminance")[0] is small_style


def test_a_zoo_styles_name_is_its_painting_for_the_painting_engines() -> None:
    photo = example_path("parrots")
    by_name = restyle.stylize_tensor(photo, "starry_night", method="arbitrary", size=64)
    by_file = restyle.stylize_tensor(
        photo, example_path("starry-night"), method="arbitrary", size=64
    )
    torch.testing.assert_close(by_name, by_file, rtol=0, atol=0)
    with pytest.raises(restyle.InvalidImageError):
        restyle.stylize_tensor(photo, "no-such-style", method="arbitrary", size=64)
