"""Engines load once and run many: one holder, every engine, several sizes and options (CPU).

Real weights (VGG19, the zoo's networks, the shipped MetaNet) at tiny sizes.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import torch

from restyle import api
from restyle.engines.arbitrary import ArbitraryEngine
from restyle.engines.fast import FastEngine
from restyle.engines.fast_config import FastSetup
from restyle.engines.gatys import GatysEngine
from restyle.engines.gatys_config import GatysOptions, GatysSetup
from restyle.engines.holder import Engines
from restyle.errors import InvalidParameterError
from restyle.examples import example_path
from restyle.imaging import as_tensor
from restyle.progress import Progress
from restyle.zoo import arbitrary_info

SIZES = (32, 48, 64)
PHOTO = example_path("parrots")
PAINTING = example_path("starry_night")


@pytest.fixture(scope="module")
def engines() -> Engines:
    return Engines(device="cpu")


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return as_tensor(PHOTO)


def _long_side(image: torch.Tensor) -> int:
    return max(image.shape[-2:])


@pytest.mark.skipif(arbitrary_info() is None, reason="no MetaNet shipped")
def test_every_engine_is_built_once_for_every_size(engines: Engines, photo: torch.Tensor) -> None:
    for size in SIZES:
        gatys = api.stylize_tensor(
            photo, PAINTING, method="gatys", size=size, iterations=2, scales=1, seed=0,
            engines=engines,
        )  # fmt: skip
        fast = api.stylize_tensor(photo, "starry-night", method="fast", size=size, engines=engines)
        arbitrary = api.stylize_tensor(
            photo, PAINTING, method="arbitrary", size=size, engines=engines
        )
        assert _long_side(gatys) == _long_side(fast) == _long_side(arbitrary) == size
    assert engines.loads == {"vgg19": 1, "gatys": 1, "fast": 1, "arbitrary": 1}
    fast_engine = engines.get("fast")
    assert isinstance(fast_engine, FastEngine)
    assert fast_engine.loads == 1  # the style's network read once for three sizes

    arbitrary = engines.get("arbitrary")
    assert isinstance(arbitrary, ArbitraryEngine)
    painting = as_tensor(PAINTING)
    # The painting is analysed at the network's own size, whatever the output size: one style
    # pass (MicroAST's signals), one network, one runner for the three sizes.
    assert list(arbitrary._styles) == [arbitrary.style_key(painting)]
    assert len(arbitrary._runners) == 1
    # Another analysis size is another network (larger or smaller brush strokes).
    other_key = arbitrary.style_key(painting, style_size=64)
    assert other_key != arbitrary.style_key(painting)
    api.stylize_tensor(photo, PAINTING, method="arbitrary", size=32, style_size=64, engines=engines)
    assert set(arbitrary._styles) == {arbitrary.style_key(painting), other_key}
    assert engines.loads["arbitrary"] == 1
    # MicroAST reads no VGG19; the MetaNet shares the holder's one network with gatys.
    gatys_engine = engines.get("gatys")
    assert isinstance(gatys_engine, GatysEngine)
    assert gatys_engine.vgg is engines.vgg()
    assert engines.loads["vgg19"] == 1


def test_another_setup_builds_another_engine_but_no_second_vgg(
    engines: Engines, photo: torch.Tensor
) -> None:
    options: dict[str, Any] = {"size": 32, "iterations": 2, "scales": 1, "seed": 0}
    api.stylize_tensor(photo, PAINTING, method="gatys", engines=engines, **options)
    before = engines.loads.copy()
    # The default setup given explicitly is the same engine.
    api.stylize_tensor(
        photo, PAINTING, method="gatys", precision="auto", engines=engines, **options
    )
    assert engines.loads == before
    out = api.stylize_tensor(
        photo, PAINTING, method="gatys", precision="float32", engines=engines, **options
    )
    assert _long_side(out) == 32
    assert engines.loads["gatys"] == before["gatys"] + 1
    assert engines.loads["vgg19"] == 1
    float32 = engines.get("gatys", GatysSetup(precision="float32"))
    assert isinstance(float32, GatysEngine) and float32.vgg is engines.vgg()
    assert float32 is not engines.get("gatys")
    assert engines.loads["gatys"] == before["gatys"] + 1  # asking again builds nothing


def test_two_threads_on_one_gatys_engine_match_sequential_runs(engines: Engines) -> None:
    engine = engines.get("gatys")
    assert isinstance(engine, GatysEngine)
    content = as_tensor(PHOTO)
    jobs = [
        (as_tensor(PAINTING), GatysOptions(size=32, scales=1, iterations=3, seed=0)),
        (
            as_tensor(example_path("great_wave")),
            GatysOptions(size=40, scales=1, iterations=3, init="noise", seed=1, tv_weight=1e-3),
        ),
    ]
    sequential = [engine.run(content, [style], options) for style, options in jobs]
    results: list[torch.Tensor | None] = [None, None]
    reports: list[list[Progress]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def work(index: int) -> None:
        style, options = jobs[index]
        try:
            start.wait()
            results[index] = engine.run(content, [style], options, callback=reports[index].append)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    for got, expected in zip(results, sequential, strict=True):
        assert got is not None and got.shape == expected.shape
        # Equal here; the tolerance only allows for a BLAS that splits work by free threads.
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    # Each call kept its own progress: three steps, its own size, its own loss terms.
    assert [[r.step for r in rs] for rs in reports] == [[1, 2, 3], [1, 2, 3]]
    assert {r.size for r in reports[0]} == {(32, 32)} and {r.size for r in reports[1]} == {(40, 40)}
    assert "tv" not in reports[0][0].losses and "tv" in reports[1][0].losses


def test_the_holder_checks_names_and_setups() -> None:
    with pytest.raises(InvalidParameterError, match="method: unknown engine 'nope'"):
        Engines(device="cpu").get("nope")
    with pytest.raises(TypeError, match=r"setup of 'fast': a FastSetup"):
        Engines(device="cpu", setups={"fast": GatysSetup()})
    with pytest.raises(TypeError, match=r"setup of 'gatys': a GatysSetup"):
        Engines(device="cpu").get("gatys", FastSetup())
    holder = Engines(device="cpu", setups={"fast": FastSetup(runtime="torch")})
    assert holder.setup_of("fast") == FastSetup(runtime="torch")
    assert holder.setup_of("gatys") == GatysSetup()
    engine = holder.get("fast")
    assert isinstance(engine, FastEngine) and engine.setup == FastSetup(runtime="torch")
    assert holder.loads == {"fast": 1}  # no VGG19 for an engine that does not read it
    with pytest.raises(InvalidParameterError, match="unknown option"):
        api.stylize_tensor(
            as_tensor(PHOTO), "starry-night", method="fast", engines=holder, iterations=3
        )
