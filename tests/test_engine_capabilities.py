"""A new engine is a config, a class and one registry entry: every surface takes it from there.

`NegativeEngine` (the photo's negative; any painting is accepted and ignored) is registered for
one test with `monkeypatch`, and the library, the CLI's flags, the service's /api/engines and
form, a clip's frames and the cost model take it without a change anywhere else. Callers ask
capabilities (`EngineSpec.feed_forward`, `.takes_init_image`, ...), never names.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import torch

from restyle import api
from restyle.cli.flags import add_option_flags
from restyle.engines import registry
from restyle.engines.base import FrameRunner
from restyle.engines.holder import Engines
from restyle.errors import InvalidParameterError
from restyle.options import check_options, option
from restyle.progress import Progress, ProgressCallback
from restyle.service.app import create_app
from restyle.service.settings import ServiceSettings
from restyle.video.frames import frame_stylizer


@dataclass(frozen=True)
class NegativeSetup:
    gain: float = option(1.0, label="Gain", help="how far from the photo", minimum=0, maximum=1)

    def __post_init__(self) -> None:
        check_options(self)


@dataclass(frozen=True)
class NegativeOptions:
    size: int = option(
        0, label="Output size", help="long side in px (0: the photo's)", minimum=0,
        maximum=4096, public=True,
    )  # fmt: skip
    flip: bool = option(False, label="Flip", help="mirror the result left to right", public=True)

    def __post_init__(self) -> None:
        check_options(self)


class NegativeEngine:
    name = "negative"

    def __init__(self, setup: NegativeSetup | None = None, *, device: Any = None) -> None:
        self.setup = setup or NegativeSetup()
        self.device = torch.device("cpu")
        self.prepared = 0

    def run(
        self,
        content: torch.Tensor,
        styles: Sequence[Any],
        options: NegativeOptions | None = None,
        *,
        style_blend: Sequence[float] | None = None,
        callback: ProgressCallback | None = None,
    ) -> torch.Tensor:
        options = options or NegativeOptions()
        out = content + self.setup.gain * (1 - 2 * content)
        if callback is not None:
            callback(Progress(step=1, total=1, loss=0.0, elapsed=0.0, size=tuple(out.shape[-2:])))
        return out.flip(-1) if options.flip else out

    def prepare(
        self, styles: Sequence[Any], weights: Sequence[float] | None, options: NegativeOptions
    ) -> FrameRunner:
        self.prepared += 1
        return lambda frames: self.run(frames, styles, options)


@pytest.fixture()
def negative(monkeypatch: pytest.MonkeyPatch) -> Iterator[registry.EngineSpec]:
    spec = registry.EngineSpec(
        name="negative",
        title="Negative",
        summary="the photo's negative: instant",
        setup=NegativeSetup,
        options=NegativeOptions,
        styles="painting",
        interactive=True,
        factory=f"{__name__}:NegativeEngine",
        uses_vgg=False,
        feed_forward=True,
    )
    monkeypatch.setitem(registry.ENGINES, "negative", spec)
    yield spec


def test_a_registered_engine_runs_through_the_library(negative: registry.EngineSpec) -> None:
    photo = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(0))
    painting = torch.rand(1, 3, 8, 8)
    engines = Engines(device="cpu")
    out = api.stylize_tensor(photo, painting, method="negative", engines=engines, flip=True)
    torch.testing.assert_close(out, (1 - photo).flip(-1))
    half = api.stylize_tensor(photo, painting, method="negative", engines=engines, gain=0.5)
    torch.testing.assert_close(half, torch.full_like(photo, 0.5))
    assert engines.loads == {"negative": 2}  # one engine per setup, nothing else built
    with pytest.raises(InvalidParameterError, match="does not start from an image"):
        api.stylize_tensor(photo, painting, method="negative", init_image=photo)
    with pytest.raises(InvalidParameterError, match="does not run batches"):
        engines.batcher("negative")


def test_a_registered_engine_gets_flags_and_its_clip_frames_go_through_its_prepared_pass(
    negative: registry.EngineSpec,
) -> None:
    parser = argparse.ArgumentParser()
    names = add_option_flags(parser)
    assert {"gain", "flip"} <= set(names)
    engines = Engines(device="cpu")
    frames = torch.rand(3, 3, 12, 16)
    run = frame_stylizer(negative, [torch.rand(1, 3, 8, 8)], None, {}, engines=engines)
    torch.testing.assert_close(run(frames), 1 - frames)
    engine = engines.feed_forward("negative")
    assert isinstance(engine, NegativeEngine) and engine.prepared == 1
    assert negative.estimate(negative.options(), (12, 16), torch.device("cpu")) is None


def test_a_registered_engine_is_served_with_its_options_and_capabilities(
    negative: registry.EngineSpec, tmp_path: Any
) -> None:
    app = create_app(ServiceSettings(data_dir=tmp_path))

    async def get() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            body = {"method": "negative", "options": {"size": "64", "flip": "true"}}
            return await c.get("/api/engines"), await c.post("/api/estimate", json=body)

    try:
        response, estimate = asyncio.run(get())
    finally:
        app.state.backend.stop()
    # Its options are checked, and its cost was never measured: no time, and no error.
    assert estimate.status_code == 200, estimate.text
    assert estimate.json()["seconds"] is None and estimate.json()["text"] is None
    engines = {e["name"]: e for e in response.json()["engines"]}
    served = engines["negative"]
    assert served["capabilities"]["feed_forward"] is True
    assert served["capabilities"]["steps"] is False
    assert set(served["options"]["properties"]) >= {"size", "flip", "strength"}
    assert served["options"]["properties"]["flip"]["title"] == "Flip"
