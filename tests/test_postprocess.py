"""Colour spaces, colour transfer and the shared post-processing step, on small seeded images."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from restyle.color import (
    luminance_transfer,
    match_color_mean_cov,
    match_histogram,
    rgb_to_ycbcr,
    rgb_to_yiq,
    ycbcr_to_rgb,
    yiq_to_rgb,
)
from restyle.errors import InvalidParameterError, RestyleError
from restyle.postprocess import blend, postprocess
from restyle.postprocess_config import PRESERVE_COLOR_CHOICES, PostprocessConfig

CONVERSIONS = {"yiq": (rgb_to_yiq, yiq_to_rgb), "ycbcr": (rgb_to_ycbcr, ycbcr_to_rgb)}


def random_image(
    seed: int, *, size: tuple[int, int] = (16, 16), low: float = 0.0, high: float = 1.0
) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(1, 3, *size, generator=generator)


def mean_cov(x: Tensor) -> tuple[Tensor, Tensor]:
    pixels = x[0].flatten(1).double()  # (3, N)
    return pixels.mean(dim=1), torch.cov(pixels, correction=0)


def assert_unclamped(x: Tensor) -> None:
    """The checks below compare exact statistics, which clamping to [0, 1] would spoil."""
    assert x.min().item() > 0.0 and x.max().item() < 1.0


# Colour spaces


@pytest.mark.parametrize("space", sorted(CONVERSIONS))
def test_round_trip_is_exact(space: str) -> None:
    forward, inverse = CONVERSIONS[space]
    x = random_image(0, size=(32, 24))
    assert (inverse(forward(x)) - x).abs().max().item() < 1e-5
    # and the other way round, from arbitrary Y/chroma values
    y = random_image(1) - 0.5
    assert (forward(inverse(y)) - y).abs().max().item() < 1e-5


@pytest.mark.parametrize("space", sorted(CONVERSIONS))
def test_known_values(space: str) -> None:
    forward, _ = CONVERSIONS[space]
    white = torch.ones(1, 3, 1, 1)
    red = torch.tensor([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1)
    grey = torch.full((1, 3, 1, 1), 0.25)
    torch.testing.assert_close(forward(white).flatten(), torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(forward(grey).flatten(), torch.tensor([0.25, 0.0, 0.0]))
    assert forward(red)[0, 0].item() == pytest.approx(0.299, abs=1e-6)


def test_ycbcr_chroma_is_zero_centred_bt601() -> None:
    blue = torch.tensor([0.0, 0.0, 1.0]).reshape(1, 3, 1, 1)
    red = torch.tensor([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1)
    assert rgb_to_ycbcr(blue)[0, 1].item() == pytest.approx(0.5, abs=1e-6)  # Cb maximum
    assert rgb_to_ycbcr(red)[0, 2].item() == pytest.approx(0.5, abs=1e-6)  # Cr maximum


def test_conversion_keeps_dtype() -> None:
    x = random_image(2).to(torch.float16)
    assert rgb_to_yiq(x).dtype == torch.float16
    assert rgb_to_ycbcr(x.double()).dtype == torch.float64


# Luminance transfer


@pytest.mark.parametrize("space", sorted(CONVERSIONS))
def test_luminance_transfer_keeps_content_chroma_and_stylized_luma(space: str) -> None:
    forward, _ = CONVERSIONS[space]
    # Low-contrast images around mid-grey, so that nothing is clamped.
    stylized = random_image(3, low=0.4, high=0.6)
    content = random_image(4, low=0.4, high=0.6)
    out = luminance_transfer(stylized, content, space=space, match_luminance=False)
    assert_unclamped(out)
    out_ych, content_ych, stylized_ych = forward(out), forward(content), forward(stylized)
    assert (out_ych[:, 1:] - content_ych[:, 1:]).abs().max().item() < 1e-4
    assert (out_ych[:, :1] - stylized_ych[:, :1]).abs().max().item() < 1e-4
    # The result differs from both inputs: it is a genuine mix.
    assert (out - content).abs().max().item() > 1e-2
    assert (out - stylized).abs().max().item() > 1e-2


def test_luminance_transfer_matches_luminance_statistics() -> None:
    stylized = random_image(5, low=0.3, high=0.9)  # brighter, more contrasty than the content
    content = random_image(6, low=0.4, high=0.6)
    out = luminance_transfer(stylized, content)
    assert_unclamped(out)
    out_luma, content_luma = rgb_to_yiq(out)[:, 0], rgb_to_yiq(content)[:, 0]
    stylized_luma = rgb_to_yiq(stylized)[:, 0]
    assert abs(stylized_luma.std() - content_luma.std()).item() > 0.02  # something to fix
    assert abs(out_luma.mean() - content_luma.mean()).item() < 1e-3
    assert abs(out_luma.std() - content_luma.std()).item() < 1e-3
    # Chroma still the content's.
    chroma_error = rgb_to_yiq(out)[:, 1:] - rgb_to_yiq(content)[:, 1:]
    assert chroma_error.abs().max().item() < 1e-4


def test_luminance_transfer_resizes_content_chroma() -> None:
    stylized = random_image(7, size=(12, 20), low=0.4, high=0.6)
    flat_colour = torch.tensor([0.55, 0.45, 0.5]).reshape(1, 3, 1, 1)
    content = flat_colour.expand(1, 3, 24, 40)
    out = luminance_transfer(stylized, content, match_luminance=False)
    assert out.shape == stylized.shape
    expected_chroma = rgb_to_yiq(flat_colour)[:, 1:]  # (1, 2, 1, 1)
    assert (rgb_to_yiq(out)[:, 1:] - expected_chroma).abs().max().item() < 1e-4


def test_luminance_transfer_of_flat_stylized_image_is_finite() -> None:
    stylized = torch.full((1, 3, 8, 8), 0.5)
    content = random_image(8, size=(8, 8))
    out = luminance_transfer(stylized, content)
    assert torch.isfinite(out).all()
    assert rgb_to_yiq(out)[:, 0].mean().item() == pytest.approx(
        rgb_to_yiq(content)[:, 0].mean().item(), abs=1e-2
    )


# Mean/covariance transfer


def correlated_image(seed: int, size: tuple[int, int] = (24, 24)) -> Tensor:
    """A mid-range image whose channels are strongly correlated (a non-diagonal covariance)."""
    generator = torch.Generator().manual_seed(seed)
    shared = torch.rand(1, 1, *size, generator=generator)
    own = torch.rand(1, 3, *size, generator=generator)
    tint = torch.tensor([0.35, 0.3, 0.25]).reshape(1, 3, 1, 1)
    return tint + 0.3 * shared + 0.1 * own


def test_mean_cov_transfer_matches_target_statistics() -> None:
    source = random_image(9, size=(32, 32), low=0.1, high=0.9)
    target = correlated_image(10)
    out = match_color_mean_cov(source, target)
    assert_unclamped(out)
    out_mean, out_cov = mean_cov(out)
    target_mean, target_cov = mean_cov(target)
    source_cov = mean_cov(source)[1]
    assert (source_cov - target_cov).abs().max().item() > 1e-2  # something to change
    assert (out_mean - target_mean).abs().max().item() < 1e-3
    assert (out_cov - target_cov).abs().max().item() < 1e-3


def test_mean_cov_transfer_of_constant_images_is_finite() -> None:
    constant = torch.full((1, 3, 8, 8), 0.3)
    target = correlated_image(11, size=(8, 8))
    out = match_color_mean_cov(constant, target)
    assert torch.isfinite(out).all()
    # A flat source has no variation to reshape: it becomes the target's mean colour.
    torch.testing.assert_close(out[0, :, 0, 0], mean_cov(target)[0].float(), atol=1e-5, rtol=0)

    out = match_color_mean_cov(target, constant)
    assert torch.isfinite(out).all()
    assert (out - 0.3).abs().max().item() < 2e-2  # a flat target flattens the source


# Histogram matching


def test_histogram_matching_takes_target_values_exactly() -> None:
    source = random_image(12, size=(10, 10))
    target = correlated_image(13, size=(20, 5))
    out = match_histogram(source, target)
    for channel in range(3):
        torch.testing.assert_close(
            out[0, channel].flatten().sort().values,
            target[0, channel].flatten().sort().values,
            atol=0,
            rtol=0,
        )
    # Order is kept: each channel's ranks are the source's ranks.
    source_ranks = source.flatten(2).argsort(dim=-1).argsort(dim=-1)
    out_ranks = out.flatten(2).argsort(dim=-1).argsort(dim=-1)
    assert torch.equal(source_ranks, out_ranks)


def test_histogram_matching_interpolates_quantiles_between_sizes() -> None:
    # 2 source pixels read the target at quantiles 1/4 and 3/4.
    source = torch.tensor([0.9, 0.1]).reshape(1, 1, 1, 2).expand(1, 3, 1, 2)
    target = torch.tensor([0.0, 0.2, 0.4, 0.6]).reshape(1, 1, 2, 2).expand(1, 3, 2, 2)
    out = match_histogram(source, target)
    expected = torch.tensor([0.5, 0.1]).reshape(1, 1, 1, 2).expand(1, 3, 1, 2)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_histogram_matching_is_deterministic_with_ties() -> None:
    source = torch.full((1, 3, 4, 4), 0.5)
    target = random_image(14, size=(4, 4))
    first, second = match_histogram(source, target), match_histogram(source, target)
    assert torch.equal(first, second)
    # Ties are broken by position: pixel order follows the target's sorted values.
    expected = target.flatten(2).sort(dim=-1).values.reshape(target.shape)
    assert torch.equal(first, expected)


# Blend and postprocess


def test_blend_endpoints_are_exact_and_midpoint_is_the_mean() -> None:
    content, stylized = random_image(15), random_image(16)
    assert torch.equal(blend(content, stylized, strength=0.0), content)
    assert torch.equal(blend(content, stylized, strength=1.0), stylized)
    midpoint = blend(content, stylized, strength=0.5)
    assert (midpoint - (content + stylized) / 2).abs().max().item() < 1e-6


@pytest.mark.parametrize("preserve_color", PRESERVE_COLOR_CHOICES)
def test_postprocess_strength_endpoints(preserve_color: str) -> None:
    content, stylized = random_image(17), random_image(18)
    config = PostprocessConfig(strength=0.0, preserve_color=preserve_color)
    assert torch.equal(postprocess(stylized, content, config), content)
    assert torch.equal(postprocess(stylized, content, PostprocessConfig()), stylized)
    half = postprocess(stylized, content, PostprocessConfig(strength=0.5))
    assert (half - (content + stylized) / 2).abs().max().item() < 1e-6


@pytest.mark.parametrize("space", sorted(CONVERSIONS))
@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_postprocess_luminance_keeps_content_chroma(space: str, strength: float) -> None:
    forward, _ = CONVERSIONS[space]
    content = random_image(19, low=0.4, high=0.6)
    stylized = random_image(20, size=(18, 14), low=0.4, high=0.6)  # an engine's odd size
    config = PostprocessConfig(strength=strength, preserve_color="luminance", color_space=space)
    out = postprocess(stylized, content, config)
    assert out.shape == content.shape
    assert_unclamped(out)
    assert (forward(out)[:, 1:] - forward(content)[:, 1:]).abs().max().item() < 1e-4
    assert (out - content).abs().max().item() > 1e-2


def test_postprocess_mean_cov_takes_content_colours() -> None:
    content = correlated_image(21, size=(16, 16))
    stylized = random_image(22, size=(16, 16), low=0.1, high=0.9)
    out = postprocess(stylized, content, PostprocessConfig(preserve_color="mean_cov"))
    out_mean, out_cov = mean_cov(out)
    content_mean, content_cov = mean_cov(content)
    assert (out_mean - content_mean).abs().max().item() < 1e-3
    assert (out_cov - content_cov).abs().max().item() < 1e-3


def test_postprocess_histogram_takes_content_channel_values() -> None:
    # Per-channel matching: each channel gets the content's values, but (unlike mean_cov) not
    # the content's correlation between channels.
    content = correlated_image(21, size=(16, 16))
    stylized = random_image(22, size=(16, 16), low=0.1, high=0.9)
    out = postprocess(stylized, content, PostprocessConfig(preserve_color="histogram"))
    torch.testing.assert_close(
        out.flatten(2).sort(dim=-1).values, content.flatten(2).sort(dim=-1).values, atol=0, rtol=0
    )
    assert (mean_cov(out)[1] - mean_cov(content)[1]).abs().max().item() > 1e-3


@pytest.mark.parametrize("output_size", [(7, 11), (40, 30), (16, 16)])
def test_postprocess_output_size(output_size: tuple[int, int]) -> None:
    content, stylized = random_image(23, size=(16, 16)), random_image(24, size=(16, 16))
    out = postprocess(stylized, content, PostprocessConfig(output_size=output_size))
    assert out.shape == (1, 3, *output_size)
    if output_size == stylized.shape[-2:]:
        assert torch.equal(out, stylized)  # no resample at the size it already has
    else:
        # One antialiased bicubic resample, clamped after it (bicubic overshoots at edges).
        resampled = torch.nn.functional.interpolate(
            stylized, size=output_size, mode="bicubic", align_corners=False, antialias=True
        )
        if output_size == (40, 30):  # upsampled noise overshoots: the clamp has work to do
            assert resampled.min() < 0 or resampled.max() > 1
        torch.testing.assert_close(out, resampled.clamp(0, 1), atol=1e-6, rtol=0)
    # Resizing keeps the mean colour (up to resampling error).
    assert (out.mean(dim=(2, 3)) - stylized.mean(dim=(2, 3))).abs().max().item() < 2e-2


def test_postprocess_batch() -> None:
    content = torch.cat([random_image(25), random_image(26)])
    stylized = torch.cat([random_image(27), random_image(28)])
    out = postprocess(stylized, content, PostprocessConfig(preserve_color="mean_cov"))
    one = postprocess(stylized[1:], content[1:], PostprocessConfig(preserve_color="mean_cov"))
    torch.testing.assert_close(out[1:], one, atol=1e-6, rtol=0)


@pytest.mark.parametrize("preserve_color", PRESERVE_COLOR_CHOICES)
def test_postprocess_bfloat16_matches_float32(preserve_color: str) -> None:
    content = random_image(29).bfloat16()
    stylized = random_image(30, size=(14, 18)).bfloat16()
    config = PostprocessConfig(strength=0.8, preserve_color=preserve_color, output_size=(12, 12))
    out = postprocess(stylized, content, config)
    reference = postprocess(stylized.float(), content.float(), config)
    assert out.dtype == torch.bfloat16
    assert reference.dtype == torch.float32
    assert (out.float() - reference).abs().max().item() < 1e-2


# Validation


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("strength", -0.1),
        ("strength", 1.5),
        ("strength", math.nan),
        ("strength", math.inf),
        ("strength", "0.5"),
        ("preserve_color", "bogus"),
        ("color_space", "lab"),
        ("output_size", (0, 10)),
        ("output_size", (10, 20_001)),
        ("output_size", (10,)),
        ("output_size", (10.0, 10)),
    ],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(InvalidParameterError, match=field) as caught:
        PostprocessConfig(**{field: value})
    assert isinstance(caught.value, RestyleError)
    assert repr(value) in str(caught.value)


def test_config_accepts_edges_and_normalises_output_size() -> None:
    config = PostprocessConfig(strength=0, output_size=[1, 20_000])  # type: ignore[arg-type]
    assert config.output_size == (1, 20_000)
    assert PostprocessConfig(strength=1).strength == 1


@pytest.mark.parametrize(
    ("stylized", "content", "message"),
    [
        (torch.rand(2, 3, 8, 8), torch.rand(1, 3, 8, 8), "batch size"),
        (torch.rand(1, 4, 8, 8), torch.rand(1, 3, 8, 8), "stylized must have shape"),
        (torch.rand(1, 3, 8, 8), torch.rand(1, 1, 8, 8), "content must have shape"),
        (torch.rand(3, 8, 8), torch.rand(1, 3, 8, 8), "stylized must have shape"),
        (torch.rand(1, 3, 8, 8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "float"),
    ],
)
def test_postprocess_rejects_mismatched_images(
    stylized: Tensor, content: Tensor, message: str
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        postprocess(stylized, content, PostprocessConfig())


def test_colour_functions_reject_bad_arguments() -> None:
    image = random_image(31)
    with pytest.raises(InvalidParameterError, match="'hsv'"):
        luminance_transfer(image, image, space="hsv")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="batch size"):
        match_histogram(image, torch.cat([image, image]))
    with pytest.raises(InvalidParameterError, match=r"\(1, 3, 16\)"):
        rgb_to_yiq(image[..., 0])
    with pytest.raises(InvalidParameterError, match="strength"):
        blend(image, image, strength=2.0)
    with pytest.raises(InvalidParameterError, match="same shape"):
        blend(image, image[..., :8], strength=0.5)
