"""POST /api/estimate: a job's expected time on this server's workers, from the engines' cost
model, for the options as the form sends them and the photo's size; refused like the rest of
the API (422 `invalid_parameter` naming the field).

The app runs in process and is never started (no worker): the estimate runs nothing but the
cost model's probe, timed once per process, so answers within one test share it and compare
exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi import FastAPI
from tests.test_service_api import ERROR_REF, Client, schema_of

from restyle.devices import resolve_device
from restyle.engines import registry
from restyle.engines.costs import device_words, duration
from restyle.imaging import DEFAULT_LIMITS
from restyle.service.app import create_app
from restyle.service.settings import ServiceSettings


@pytest.fixture()
def app(tmp_path: Path) -> Iterator[FastAPI]:
    app = create_app(ServiceSettings(data_dir=tmp_path))
    yield app
    app.state.backend.stop()


@pytest.fixture()
def client(app: FastAPI) -> Iterator[Client]:
    c = Client(app)
    yield c
    c.close()


def estimate(client: Client, **body: Any) -> dict[str, Any]:
    response = client.post("/api/estimate", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert set(answer) == {"method", "seconds", "text", "device"}
    assert answer["method"] == body["method"]
    return answer


def test_gatys_is_expected_longer_for_a_larger_output_and_photo(client: Client) -> None:
    at_512 = estimate(client, method="gatys", width=1024, height=768, options={"size": "512"})
    at_1024 = estimate(client, method="gatys", width=1024, height=768, options={"size": "1024"})
    assert 0 < at_512["seconds"] < at_1024["seconds"]
    # No size (none: the photo's own): the photo's pixels decide.
    small = estimate(client, method="gatys", width=512, height=384, options={"size": "none"})
    large = estimate(client, method="gatys", width=1024, height=768, options={"size": "none"})
    assert small["seconds"] < large["seconds"]
    # It is the cost model's answer for the workers' device (here: this machine's default).
    device = resolve_device(None)
    expected = registry.ENGINES["gatys"].expected({"size": 1024}, (768, 1024), device)
    assert expected is not None and at_1024["seconds"] == pytest.approx(expected.seconds)
    assert at_1024["text"] == f"about {duration(at_1024['seconds'])}"
    assert at_1024["device"] == device_words(device)
    # No photo size given: 512 × 512, with the engine's default options.
    default = estimate(client, method="gatys")
    assert default == estimate(client, method="gatys", width=512, height=512, options={})


def test_a_time_limit_caps_the_estimate(client: Client) -> None:
    # No step count: as many steps as fit, so the run takes the whole limit.
    for limit in ("5", "5s", 5, 5.0):
        answer = estimate(client, method="gatys", options={"time_limit_s": limit})
        assert (answer["seconds"], answer["text"]) == (5, "about 5 s"), limit
    # A step count: whichever comes first.
    steps = {"size": "1024", "iterations": "2000"}
    uncapped = estimate(client, method="gatys", options=steps)["seconds"]
    capped = estimate(client, method="gatys", options={**steps, "time_limit_s": "2m"})["seconds"]
    assert capped == pytest.approx(min(uncapped, 120))
    assert estimate(client, method="gatys", options={"time_limit_s": "0"}) == estimate(
        client, method="gatys"
    )  # 0: no limit


def test_a_feed_forward_engine_is_expected_in_moments(client: Client) -> None:
    fast = estimate(client, method="fast", width=1024, height=768)
    gatys = estimate(client, method="gatys", width=1024, height=768)
    assert 0 < fast["seconds"] < gatys["seconds"] / 3
    assert fast["seconds"] < 30
    assert fast["text"].startswith("about ") and fast["device"] == gatys["device"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"method": "nope"}, "method: unknown engine 'nope'"),
        ({"method": "gatys", "options": {"steps": "3"}}, "steps: not an option of the gatys"),
        ({"method": "fast", "options": {"iterations": "3"}}, "iterations: not an option of the"),
        ({"method": "gatys", "options": {"size": "huge"}}, "size: expected an integer"),
        ({"method": "gatys", "options": {"size": "4096"}}, "size: 16..1024 for gatys"),
        ({"method": "gatys", "options": {"time_limit_s": "-5s"}}, "time_limit_s: expected"),
        ({"method": "gatys", "options": {"time_limit_s": "soon"}}, "time_limit_s: expected"),
        ({"method": "gatys", "options": {"iterations": True}}, "iterations: expected"),
        ({"method": "gatys", "width": 0}, "body.width: "),
        ({"method": "gatys", "height": DEFAULT_LIMITS.max_side + 1}, "body.height: "),
        ({"method": "gatys", "width": "wide"}, "body.width: "),
        ({"method": "gatys", "width": 10_000, "height": 10_000}, "width, height: a 10000×10000"),
        ({"method": "gatys", "colour": "red"}, "body.colour: "),
        ({"options": {}}, "body.method: "),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/estimate", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert error["message"].startswith(field), error["message"]


def test_a_workers_device_this_machine_lacks_gives_no_estimate(tmp_path: Path) -> None:
    """Scale-out: the workers' device (here one no machine of this test has) is not the API's,
    so nothing here can be timed: `seconds` is null, and the device is named as configured."""
    assert torch.cuda.device_count() < 64
    settings = ServiceSettings(
        data_dir=tmp_path, redis_url="redis://127.0.0.1:9/0", device="cuda:63"
    )  # no Redis there: the estimate needs no store
    app = create_app(settings)
    client = Client(app)
    try:
        answer = estimate(client, method="gatys")
    finally:
        client.close()
        app.state.backend.stop()
    assert answer == {"method": "gatys", "seconds": None, "text": None, "device": "cuda:63"}


def test_openapi_documents_the_estimate(client: Client) -> None:
    openapi = client.get("/openapi.json").json()
    route = openapi["paths"]["/api/estimate"]["post"]
    assert route["summary"] and "cost model" in " ".join(route["description"].split())
    request_ref = route["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = openapi["components"]["schemas"][request_ref.rsplit("/", 1)[-1]]
    assert set(request["properties"]) == {"method", "width", "height", "options"}
    assert request["required"] == ["method"]
    width = request["properties"]["width"]
    assert (width["default"], width["minimum"], width["maximum"]) == (
        512,
        1,
        DEFAULT_LIMITS.max_side,
    )
    answer = schema_of(openapi, "/api/estimate", "post", "200")
    assert set(answer["properties"]) == {"method", "seconds", "text", "device"}
    for status in ("400", "422"):
        schema = route["responses"][status]["content"]["application/json"]["schema"]
        assert schema["$ref"] == ERROR_REF
