"""The gatys engine's quick default: relative losses, the feed-forward start and time limits
(real VGG19 and MicroAST weights on the CPU, small images)."""

from __future__ import annotations

import time

import pytest
import torch

from restyle.api import stylize_tensor
from restyle.engines.gatys_config import DEFAULT_STEPS, GatysOptions
from restyle.engines.gatys_plan import plan_scales
from restyle.engines.holder import Engines
from restyle.engines.registry import ENGINES
from restyle.metrics import StyleMetrics
from restyle.progress import Progress

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def engines() -> Engines:
    return Engines(device="cpu")


@pytest.fixture(scope="module")
def metrics() -> StyleMetrics:
    return StyleMetrics()


def _contrast(painting: torch.Tensor, factor: float) -> torch.Tensor:
    """The same painting with its contrast scaled about its mean colour."""
    mean = painting.mean(dim=(-2, -1), keepdim=True)
    return (mean + factor * (painting - mean)).clamp(0, 1)


def _style_distances(
    engines: Engines, metrics: StyleMetrics, photo: torch.Tensor, painting: torch.Tensor, **loss
) -> list[float]:
    """Per contrast of the painting (0.5, 1, 1.5), the result's style distance to it."""
    found = []
    for factor in (0.5, 1.0, 1.5):
        copy = _contrast(painting, factor)
        options = GatysOptions(size=64, scales=1, iterations=20, init="content", **loss)
        out = engines.get("gatys").run(photo, [copy], options)
        found.append(metrics.distances(out, photo, copy).style)
    return found


def test_relative_losses_stylize_a_painting_alike_whatever_its_contrast(
    engines: Engines, metrics: StyleMetrics
) -> None:
    from restyle.examples import example_path
    from restyle.imaging import as_tensor, resize_tensor_to_long_side

    photo = resize_tensor_to_long_side(as_tensor(example_path("parrots")), 64)
    painting = resize_tensor_to_long_side(as_tensor(example_path("starry-night")), 64)
    # The faint copy's Grams are several times weaker than the photo's (style distance of the
    # photo itself: about 21, against 3 for the painting as it is).
    relative = _style_distances(engines, metrics, photo, painting, loss_scale="relative")
    absolute = _style_distances(
        engines, metrics, photo, painting, loss_scale="absolute", style_weight=10.0
    )
    # Absolute losses (the previous default, weight 10) stop far from the faint copy: its
    # remaining error is small next to the content term. Relative ones go as far for every copy.
    assert max(relative) < 0.4
    assert absolute[0] > 2 * relative[0]
    assert max(relative) / min(relative) < max(absolute) / min(absolute)


def test_the_default_starts_from_the_arbitrary_pass(
    engines: Engines, small_content, small_style
) -> None:
    spec = ENGINES["gatys"]
    assert spec.starts_from_feed_forward and GatysOptions().init == "feed_forward"
    first = []

    def keep(progress: Progress) -> None:
        if progress.preview is not None and not first:
            first.append(progress.preview)

    arbitrary = stylize_tensor(
        small_content, small_style, method="arbitrary", engines=engines, size=48
    )
    start = stylize_tensor(
        small_content, small_style, method="gatys", engines=engines, iterations=0, size=48
    )
    assert start.shape == arbitrary.shape
    assert (start - arbitrary).abs().max() < 1e-5  # no step: the arbitrary pass itself
    stepped = stylize_tensor(
        small_content,
        small_style,
        method="gatys",
        engines=engines,
        size=48,
        iterations=1,
        preview_every=1,
        progress=keep,
    )
    # The first step moved away from that start, by a small step (the trust region).
    moved = (first[0] - arbitrary).abs()
    assert 0 < moved.mean() < 0.1 and torch.equal(first[0], stepped)


def test_the_default_is_one_scale_of_default_steps_and_the_photo_start_keeps_the_ladder() -> None:
    plans = plan_scales((384, 512), GatysOptions(size=512))
    assert [(p.size, p.iterations) for p in plans] == [((384, 512), DEFAULT_STEPS)]
    ladder = plan_scales((384, 512), GatysOptions(size=512, init="content", iterations=300))
    assert [p.iterations for p in ladder] == [150, 150, 300]
    assert ladder[0].size == (96, 128)


def _warm(engines: Engines, content: torch.Tensor, style: torch.Tensor) -> None:
    """One short run at the sizes timed below: a cold start (VGG19 read, first kernels at a
    size) is not what a time limit is about."""
    for init in ("feed_forward", "content"):
        options = GatysOptions(size=64, min_scale_size=32, iterations=1, init=init)
        engines.get("gatys").run(content, [style], options)


def test_a_time_limit_stops_the_run_within_a_tenth_of_it(
    engines: Engines, small_content, small_style
) -> None:
    _warm(engines, small_content, small_style)
    reports: list[Progress] = []
    began = time.perf_counter()
    engines.get("gatys").run(
        small_content,
        [small_style],
        GatysOptions(size=64, time_limit_s=6.0),
        callback=reports.append,
    )
    took = time.perf_counter() - began
    assert 5.4 <= took <= 6.6
    assert reports[-1].step == reports[-1].total >= 1  # as many steps as fit
    assert reports[-1].time_limit == 6.0
    # With a step count too, whichever ends first: here the steps.
    began = time.perf_counter()
    engines.get("gatys").run(
        small_content, [small_style], GatysOptions(size=48, iterations=3, time_limit_s=30.0)
    )
    assert time.perf_counter() - began < 10


def test_a_time_limit_shares_out_the_ladder_and_caps_the_estimate(
    engines: Engines, small_content, small_style
) -> None:
    _warm(engines, small_content, small_style)
    reports: list[Progress] = []
    options = GatysOptions(size=64, min_scale_size=32, init="content", time_limit_s=6.0)
    began = time.perf_counter()
    engines.get("gatys").run(small_content, [small_style], options, callback=reports.append)
    assert 5.4 <= time.perf_counter() - began <= 6.6
    assert {r.scale for r in reports} == {1, 2}  # the coarse scale had its share, not all
    estimate = ENGINES["gatys"].estimate(options, (48, 48), CPU)
    assert estimate is not None and estimate.seconds == 6.0
    # With a step count too: whichever ends first.
    long_run = GatysOptions(size=512, iterations=300)
    uncapped = ENGINES["gatys"].estimate(long_run, (512, 512), CPU)
    capped = ENGINES["gatys"].estimate(
        GatysOptions(size=512, iterations=300, time_limit_s=5.0), (512, 512), CPU
    )
    assert uncapped is not None and capped is not None
    assert uncapped.seconds > 5.0 and capped.seconds == 5.0
