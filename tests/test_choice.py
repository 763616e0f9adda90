"""Which engine `auto` runs and how long a run is expected to take (the measured cost model)."""

from __future__ import annotations

import json

import pytest
import torch

from restyle.engines import costs
from restyle.engines.choice import QUICK_SECONDS, choose_engine
from restyle.engines.registry import ENGINES
from restyle.examples import example_path

CPU = torch.device("cpu")


def painting() -> str:
    path = example_path("the-scream")
    assert path is not None
    return str(path)


def test_the_cost_model_covers_every_engine_with_a_measurement() -> None:
    data = json.loads(costs.COST_MODEL_FILE.read_text())
    assert data["machine"], "the machine the constants were measured on is recorded"
    for name in ENGINES:
        measured = data["engines"][name]["float32"]
        assert measured["per_megapixel"] > 0 and measured["fixed"] >= 0 <= measured["per_pass"]
        assert len(measured["runs"]) >= 2  # a line is fitted through measured runs


def test_estimates_grow_with_the_work_and_gatys_costs_most() -> None:
    gatys, fast = ENGINES["gatys"], ENGINES["fast"]
    hw = (500, 500)
    small = gatys.estimate(gatys.options(size=256), hw, CPU).seconds
    large = gatys.estimate(gatys.options(size=512), hw, CPU).seconds
    fewer = gatys.estimate(gatys.options(size=512, iterations=10), hw, CPU).seconds
    assert 0 < small < large and fewer < large
    assert 2.5 < large / small < 6  # about 4x the pixels per step
    one_pass = fast.estimate(fast.options(size=512), hw, CPU).seconds
    assert 0 < one_pass < small / 3  # (twenty steps of gatys at a quarter of the pixels)


def test_gatys_from_the_photo_takes_minutes_and_the_default_a_fraction_of_that() -> None:
    # The measured model must know what users meet: Gatys from the photo (300 steps on the
    # ladder) takes minutes at 512 px on a CPU (20-25 min on a busy 2-core machine); the
    # default, 20 steps from the feed-forward result at the final size, about 40 s there.
    gatys = ENGINES["gatys"]
    from_photo = gatys.estimate(gatys.options(init="content", iterations=300), (500, 500), CPU)
    default = gatys.estimate(gatys.options(), (500, 500), CPU)
    assert from_photo.seconds > 5 * QUICK_SECONDS
    assert "min" in str(from_photo) and "CPU" in str(from_photo)
    assert default.seconds < from_photo.seconds / 8


def test_auto_on_a_cpu_runs_a_large_painting_in_one_pass_and_says_what_gatys_would_cost() -> None:
    big = {"size": 2048}  # 16x the default's pixels: minutes for gatys on a CPU
    choice = choose_engine([painting()], options=big, content_hw=(2048, 2048), device=CPU)
    assert choice.method == "arbitrary"
    assert "--method gatys" in choice.reason and "min" in choice.reason
    assert choice.estimate is not None and choice.estimate.seconds < QUICK_SECONDS


def test_auto_runs_gatys_where_it_is_quick_or_asked_for_by_its_options() -> None:
    tiny = choose_engine([painting()], options={"size": 32}, content_hw=(500, 500), device=CPU)
    assert tiny.method == "gatys"  # a 32 px run: seconds even on a CPU
    assert tiny.estimate is not None and tiny.estimate.seconds <= QUICK_SECONDS
    asked = choose_engine([painting()], options={"iterations": 50}, device=CPU)
    assert asked.method == "gatys" and "only gatys" in asked.reason
    assert choose_engine(["the-scream"], options={"seed": 1}, device=CPU).method == "gatys"


def test_auto_never_sends_a_video_to_gatys() -> None:
    choice = choose_engine([painting()], options={"size": 32}, device=CPU, video=True)
    assert choice.method == "arbitrary"


def test_auto_names_the_trained_style() -> None:
    choice = choose_engine(["starry_night"], device=CPU)
    assert choice.method == "fast" and "'starry_night' is a trained style" in choice.reason


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0.2, "1 s"),
        (6.4, "6 s"),
        (44, "40 s"),
        (600, "10 min"),
        (5400, "1 h 30 min"),
        (7800, "2 h 10 min"),
    ],
)
def test_durations_in_words(seconds: float, words: str) -> None:
    assert costs.duration(seconds) == words


def test_the_probe_times_something_real() -> None:
    first = costs.probe_seconds(CPU)
    assert 0 < first < 5
    assert costs.probe_seconds(CPU) == first  # measured once per device and precision
