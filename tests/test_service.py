"""The HTTP service in its embedded mode: a real `restyle serve` on loopback, real engines."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from tests.service_processes import Service

from restyle.engines.registry import ENGINES
from restyle.examples import example_path

pytestmark = pytest.mark.timeout(600)


def jpeg(name: str = "cat", side: int = 96) -> bytes:
    with Image.open(example_path(name)) as image:
        image = image.convert("RGB")
        image.thumbnail((side, side))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        return buffer.getvalue()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    server = Service(tmp_path_factory.mktemp("service")).start()
    yield server
    server.stop()


@pytest.fixture()
def client(service: Service) -> Iterator[httpx.Client]:
    with service.client() as c:
        yield c


def submit(client: httpx.Client, **fields: str) -> dict:
    files = {"content": ("photo.jpg", jpeg(), "image/jpeg")}
    response = client.post("/api/jobs", files=files, data={"style": "starry-night", **fields})
    assert response.status_code == 202, response.text
    return response.json()


def auth(job: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {job['token']}"}


def wait(client: httpx.Client, job: dict, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/jobs/{job['id']}", headers=auth(job)).json()
        if status["status"] in ("succeeded", "failed", "cancelled"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job['id']} did not finish: {status}")


def test_health_readiness_and_openapi_docs(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["mode"] == "embedded"
    schema = client.get("/openapi.json").json()
    assert {"/api/jobs", "/api/stylize", "/api/styles", "/api/jobs/{job_id}/events"} <= set(
        schema["paths"]
    )
    assert "swagger" in client.get("/docs").text.lower()


def test_styles_list_the_zoo_with_thumbnails(client: httpx.Client) -> None:
    styles = client.get("/api/styles").json()["styles"]
    assert len(styles) >= 10
    starry = next(s for s in styles if s["id"] == "starry-night")
    assert starry["artist"] == "Vincent van Gogh" and "fast" in starry["engines"]
    thumbnail = client.get(starry["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumbnail.content)).size) >= 512


def test_a_fast_job_runs_and_its_result_downloads(client: httpx.Client) -> None:
    job = submit(client, method="fast", size="128", format="jpeg")
    assert job["status"] == "queued" and len(job["id"]) >= 16 and len(job["token"]) >= 32
    assert job["urls"]["result"].endswith(f"/api/jobs/{job['id']}/result")
    final = wait(client, job)
    assert final["status"] == "succeeded" and final["progress"] == 1.0
    result = client.get(job["urls"]["result"], headers=auth(job))
    assert result.status_code == 200 and result.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(result.content))
    assert max(image.size) == 128
    # The token also works as a query parameter (for <img src> and EventSource).
    assert client.get(f"{job['urls']['result']}?token={job['token']}").status_code == 200


def test_events_stream_progress_previews_and_the_end_of_a_gatys_job(client: httpx.Client) -> None:
    job = submit(client, method="gatys", size="64", iterations="16")
    events: list[tuple[str, dict]] = []
    with client.stream("GET", job["urls"]["events"], headers=auth(job), timeout=300) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
                if name == "end":
                    break
    names = [n for n, _ in events]
    assert names[0] == "status" and names[-1] == "end"
    assert events[-1][1]["status"] == "succeeded", events[-1]
    progress = [e["progress"] for n, e in events if n == "status"]
    assert progress == sorted(progress) and progress[-1] == 1.0
    previews = [e for n, e in events if n == "preview"]
    assert previews and previews[0]["image"].startswith("data:image/jpeg;base64,")
    preview = client.get(job["urls"]["preview"], headers=auth(job))
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"


def test_a_gatys_job_on_its_defaults_and_one_with_a_time_limit(client: httpx.Client) -> None:
    # No step count: the default (20 steps from the arbitrary pass) is budgeted and runs.
    assert wait(client, submit(client, method="gatys", size="48"))["status"] == "succeeded"
    # A time limit and no step count: as many steps as fit, the clock counted down.
    job = submit(client, method="gatys", size="48", time_limit_s="8s")
    messages = []
    with client.stream("GET", job["urls"]["events"], headers=auth(job), timeout=300) as stream:
        name = ""
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name == "status":
                status = json.loads(line.split(":", 1)[1])
                messages.append(status.get("message") or "")
                if status["status"] not in ("queued", "running"):
                    break
    assert any(m.startswith("step ") and m.endswith(" left") for m in messages), messages
    assert wait(client, job)["status"] == "succeeded"
    files = {"content": ("photo.jpg", jpeg(), "image/jpeg")}
    data = {"style": "starry-night", "method": "gatys", "size": "48", "time_limit_s": "5h"}
    over = client.post("/api/jobs", files=files, data=data)  # past the server's job timeout
    assert over.status_code == 400 and "time_limit_s" in over.text, over.text


def test_an_uploaded_painting_runs_with_gatys(client: httpx.Client) -> None:
    files = {
        "content": ("photo.jpg", jpeg(), "image/jpeg"),
        "style_image": ("painting.jpg", jpeg("great_wave"), "image/jpeg"),
    }
    data = {"method": "gatys", "size": "48", "iterations": "4", "format": "webp"}
    response = client.post("/api/jobs", files=files, data=data)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["style_upload"] is True
    assert wait(client, job)["status"] == "succeeded"
    result = client.get(job["urls"]["result"], headers=auth(job))
    assert Image.open(io.BytesIO(result.content)).format == "WEBP"


def test_tokens_isolate_clients(client: httpx.Client) -> None:
    mine, theirs = submit(client, size="64"), submit(client, size="64")
    url = f"/api/jobs/{mine['id']}"
    assert client.get(url, headers=auth(theirs)).status_code == 403
    assert client.get(url).status_code == 401
    assert client.get(f"{url}/result", headers=auth(theirs)).status_code == 403
    assert client.delete(url, headers=auth(theirs)).status_code == 403
    assert client.get(url, headers=auth(mine)).status_code == 200
    forbidden = client.get(url, headers=auth(theirs)).json()
    assert forbidden["error"]["code"] == "forbidden"
    assert wait(client, mine)["status"] == "succeeded"


def test_cancelling_a_running_job(client: httpx.Client) -> None:
    job = submit(client, method="gatys", size="96", iterations="400")
    deadline = time.monotonic() + 120
    while client.get(f"/api/jobs/{job['id']}", headers=auth(job)).json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cancelled = client.delete(f"/api/jobs/{job['id']}", headers=auth(job))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    result = client.get(job["urls"]["result"], headers=auth(job))
    assert result.status_code == 409 and result.json()["error"]["code"] == "no_result"
    # The worker is free again: a new job finishes long before 400 iterations could have.
    assert wait(client, submit(client, size="64"), timeout=60)["status"] == "succeeded"
    assert client.get(f"/api/jobs/{job['id']}", headers=auth(job)).json()["status"] == "cancelled"


def test_result_before_the_end_is_a_conflict(client: httpx.Client) -> None:
    job = submit(client, method="gatys", size="64", iterations="60")
    early = client.get(job["urls"]["result"], headers=auth(job))
    assert early.status_code == 409 and early.json()["error"]["code"] == "not_ready"
    client.delete(f"/api/jobs/{job['id']}", headers=auth(job))


def test_synchronous_stylize_returns_the_image_or_base64_json(client: httpx.Client) -> None:
    files = {"content": ("photo.jpg", jpeg(), "image/jpeg")}
    data = {"style": "the-scream", "size": "96"}
    image = client.post("/api/stylize", files=files, data=data)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert max(Image.open(io.BytesIO(image.content)).size) == 96
    as_json = client.post("/api/stylize", files=files, data={**data, "response": "json"})
    body = as_json.json()
    assert body["mime"] == "image/png"
    import base64

    decoded = Image.open(io.BytesIO(base64.b64decode(body["image"])))
    assert decoded.size == Image.open(io.BytesIO(image.content)).size
    slow = client.post("/api/stylize", files=files, data={**data, "method": "gatys"})
    assert slow.status_code == 400 and "/api/jobs" in slow.json()["error"]["message"]


def test_metrics_count_jobs_and_errors(client: httpx.Client) -> None:
    files = {"content": ("x.jpg", b"nope", "image/jpeg")}
    client.post("/api/jobs", files=files, data={"style": "starry-night"})
    wait(client, submit(client, size="64"))
    text = client.get("/metrics").text
    assert "restyle_queue_depth" in text
    succeeded = next(
        line for line in text.splitlines()
        if line.startswith('restyle_jobs_finished_total{status="succeeded"}')
    )  # fmt: skip
    assert float(succeeded.split()[-1]) >= 1
    assert "restyle_job_duration_seconds_bucket" in text
    assert 'restyle_api_errors_total{code="invalid_image"}' in text
    # Each lane's workers (the embedded defaults: one thread each) and its line.
    for lane in ("interactive", "heavy"):
        assert f'restyle_lane_workers{{lane="{lane}"}} 1.0' in text
        assert f'restyle_lane_queued{{lane="{lane}"}} 0.0' in text


def test_limits_per_client_and_a_restart_keeps_the_store(tmp_path: Path) -> None:
    server = Service(tmp_path, {"max_jobs_per_client": "2"}).start()
    try:
        with server.client() as c:
            slow = [submit(c, method="gatys", size="64", iterations="300") for _ in range(2)]
            refused = c.post(
                "/api/jobs",
                files={"content": ("photo.jpg", jpeg(), "image/jpeg")},
                data={"style": "starry-night", "method": "gatys", "size": "64"},
            )
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "too_many_jobs"
            assert "heavy" in refused.json()["error"]["message"]
            # The limit is per lane: the same client's quick jobs are still taken.
            quick = submit(c, size="64")
            assert quick["lane"] == "interactive" and wait(c, quick)["status"] == "succeeded"
        server.stop(kill=True)  # a crash with one job running and one queued
        server = Service(tmp_path, {"max_jobs_per_client": "2"}, port=server.port).start()
        with server.client() as c:
            for job in slow:
                status = c.get(f"/api/jobs/{job['id']}", headers=auth(job)).json()
                assert status["status"] in ("queued", "running"), status
                c.delete(f"/api/jobs/{job['id']}", headers=auth(job))
            assert submit(c, size="64")["status"] == "queued"
    finally:
        server.stop()


def test_live_mode_gets_a_style_network_as_onnx(client: httpx.Client) -> None:
    import numpy as np
    import onnxruntime as ort

    response = client.get("/api/styles/starry-night/model.onnx")
    assert response.status_code == 200, response.text
    session = ort.InferenceSession(response.content, providers=["CPUExecutionProvider"])
    frame = np.random.default_rng(0).random((1, 3, 48, 64), dtype=np.float32)
    (out,) = session.run(None, {"image": frame})
    assert out.shape == frame.shape and np.abs(out - frame).mean() > 0.01
    assert client.get("/api/styles/mona-lisa/model.onnx").status_code == 404


def test_any_painting_through_the_arbitrary_engine_when_installed(client: httpx.Client) -> None:

    painting = {"style_image": ("painting.jpg", jpeg("great_wave"), "image/jpeg")}
    network = client.post("/api/live/model.onnx", files=painting)
    stylized = client.post(
        "/api/stylize",
        files={"content": ("photo.jpg", jpeg(), "image/jpeg"), **painting},
        data={"method": "arbitrary", "size": "64"},
    )
    if not ENGINES["arbitrary"].installed():
        assert network.status_code == stylized.status_code == 400
        assert network.json()["error"]["code"] == "method_unavailable"
        assert stylized.json()["error"]["code"] == "method_unavailable"
        return
    import numpy as np
    import onnxruntime as ort

    assert network.status_code == 200, network.text
    session = ort.InferenceSession(network.content, providers=["CPUExecutionProvider"])
    frame = np.random.default_rng(0).random((1, 3, 48, 64), dtype=np.float32)
    assert session.run(None, {"image": frame})[0].shape == frame.shape
    assert stylized.status_code == 200, stylized.text
    assert max(Image.open(io.BytesIO(stylized.content)).size) == 64


@pytest.mark.parametrize(("fmt", "suffix"), [("png", ".png"), ("jpeg", ".jpg")])
def test_the_cli_and_the_service_give_the_same_bytes(
    client: httpx.Client, tmp_path: Path, fmt: str, suffix: str
) -> None:
    """One encoder for results: the same job through `restyle stylize` and the API."""
    from restyle.cli import main

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg("parrots", side=120))
    out = tmp_path / f"cli{suffix}"
    argv = ["stylize", str(photo), "-s", "the-scream", "--method", "fast", "--quiet"]
    assert main([*argv, "--strength", "0.7", "-o", str(out)]) == 0
    files = {"content": ("photo.jpg", photo.read_bytes(), "image/jpeg")}
    data = {"style": "the-scream", "method": "fast", "strength": "0.7", "format": fmt}
    job = client.post("/api/jobs", files=files, data=data).json()
    assert wait(client, job)["status"] == "succeeded"
    served = client.get(f"/api/jobs/{job['id']}/result", headers=auth(job)).content
    assert served[:4] == out.read_bytes()[:4]  # the same format, then the same bytes
    assert served == out.read_bytes()
