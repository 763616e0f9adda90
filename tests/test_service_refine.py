"""Refinements and personal styles in the HTTP service.

The checks of a request and the store's bookkeeping run in process (an app never started: no
worker takes a job); refinements themselves run on a real `restyle serve` with real training,
on 32 px crops, one crop a step, within budgets of a few seconds.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis
import torch
from fastapi import FastAPI
from PIL import Image
from tests.service_processes import RedisServer, Service, Worker
from tests.test_service import auth, jpeg, wait
from tests.test_service_api import Client
from tests.video_clips import decoded, make_clip

from restyle import zoo
from restyle.examples import refine_photos
from restyle.imaging import as_tensor, resize_tensor_to_long_side
from restyle.models.checkpoint import load_fast_network
from restyle.service.app import create_app
from restyle.service.jobs import new_token
from restyle.service.personal import PREFIX, PersonalStyle, new_style_id
from restyle.service.refine import ARTEFACT_PHOTOS, artefact_check, artefact_report
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend
from restyle.service.sweeper import sweep
from restyle.training.data import list_images

pytestmark = pytest.mark.timeout(600)

# A server that refines in seconds: tiny crops, batch 1, a 3-second default budget.
TINY = {
    "refine_crop_size": "32",
    "refine_batch_size": "1",
    "refine_style_size": "64",
    "refine_preview_size": "32",
    "refine_preview_every_s": "0.5",
    "refine_default_minutes": "0.05",
    "refine_budgets_minutes": "[0.05, 1]",
    "refine_max_minutes": "1",
    "max_personal_styles": "3",
    "default_size": "64",
    "max_jobs_per_client": "8",
}
STYLE = "starry-night"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Requests checked before a job exists --------------------------------------------------------
@pytest.fixture()
def app(tmp_path: Path) -> Iterator[FastAPI]:
    settings = ServiceSettings(
        data_dir=tmp_path, max_personal_styles=2, refine_max_minutes=15, sync_timeout_s=0.5
    )
    app = create_app(settings)
    yield app
    app.state.backend.stop()


@pytest.fixture()
def client(app: FastAPI) -> Iterator[Client]:
    c = Client(app)
    yield c
    c.close()


def personal(owner_sha256: str, **fields: Any) -> PersonalStyle:
    return PersonalStyle(id=new_style_id(), owner_sha256=owner_sha256, name="mine", **fields)


def test_no_zoo_id_can_be_taken_for_a_personal_one() -> None:
    assert not [e.id for e in zoo.entries() if e.id.startswith(PREFIX)]


@pytest.mark.parametrize(
    ("form", "files", "status", "code"),
    [
        ({"painting_style": "no-such-style"}, None, 400, "unknown_style"),
        ({"painting_style": "starry-night:lite"}, None, 400, "unknown_style"),
        ({}, None, 400, "invalid_style"),
        ({"painting_style": STYLE}, {"painting": ("p.jpg", jpeg(), "image/jpeg")}, 400, None),
        ({}, {"painting": ("p.jpg", b"not an image at all", "image/jpeg")}, 400, "invalid_image"),
        ({"painting_style": STYLE, "minutes": "16"}, None, 400, "over_budget"),
        ({"painting_style": STYLE, "minutes": "0"}, None, 400, "invalid_parameter"),
        ({"painting_style": STYLE, "minutes": "nan"}, None, 400, "invalid_parameter"),
        ({"painting_style": STYLE, "steps": "9"}, None, 400, "invalid_parameter"),
        ({"painting_style": STYLE, "name": "x" * 81}, None, 400, "invalid_parameter"),
    ],
)
def test_a_bad_refinement_is_refused_before_it_is_queued(
    client: Client,
    app: FastAPI,
    form: dict[str, str],
    files: dict[str, Any] | None,
    status: int,
    code: str | None,
) -> None:
    parts: dict[str, Any] = {k: (None, v) for k, v in form.items()} | (files or {})
    response = client.post("/api/refines", files=parts or {"name": (None, "x")})
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["error"]["code"] == code, response.text
    assert app.state.backend.stats.queue_depth() == 0


def test_the_quota_of_personal_styles_is_a_409(client: Client, app: FastAPI) -> None:
    token, owner = new_token()
    backend = app.state.backend
    for _ in range(2):
        backend.personal.put(personal(owner), {"model.safetensors": b"x"})
    full = client.post(
        "/api/refines", files={"painting_style": (None, STYLE)}, headers=bearer(token)
    )
    assert full.status_code == 409 and full.json()["error"]["code"] == "quota_full"
    other = client.post("/api/refines", files={"painting_style": (None, STYLE)})
    assert other.status_code == 202, other.text  # a new token: its own quota
    job = other.json()
    assert job["kind"] == "refine" and job["style_id"].startswith(PREFIX)
    assert job["training"] == {"step": 0, "loss": None, "seconds_left": None, "budget_s": 300.0}
    assert job["artefacts"] is None  # checked once the network is trained
    assert job["options"]["minutes"] == 5  # the default budget
    bad = client.post("/api/refines", files={"painting_style": (None, STYLE)}, headers=bearer("x"))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_token"


def test_personal_styles_expire_unless_kept(client: Client, app: FastAPI, tmp_path: Path) -> None:
    token, owner = new_token()
    backend = app.state.backend
    old = personal(owner, expires_at=time.time() - 1)
    kept = personal(owner, expires_at=time.time() - 1)
    for style in (old, kept):
        backend.personal.put(style, {"model.safetensors": b"x", "thumbnail.jpg": jpeg()})
    listed = client.get("/api/styles", headers=bearer(token)).json()["personal"]
    assert [s["id"] for s in listed] == [old.id, kept.id]
    assert client.get("/api/styles").json()["personal"] == []
    response = client.post(f"/api/styles/{kept.id}/keep", headers=bearer(token))
    assert response.status_code == 200 and response.json()["kept"] is True
    stranger = client.post(f"/api/styles/{kept.id}/keep", headers=bearer(new_token()[0]))
    assert stranger.status_code == 404
    counts = sweep(backend, app.state.settings)
    assert counts["styles_expired"] == 1
    assert backend.personal.get(old.id) is None and backend.personal.get(kept.id) is not None
    assert not (tmp_path / "styles" / old.id).exists()
    assert (tmp_path / "styles" / kept.id / "thumbnail.jpg").is_file()


def test_a_personal_style_is_renamed_only_by_its_token(client: Client, app: FastAPI) -> None:
    token, owner = new_token()
    style = personal(owner)
    app.state.backend.personal.put(style, {"model.safetensors": b"x"})
    url = f"/api/styles/{style.id}"
    renamed = client.patch(url, json={"name": "  Tahiti \t at  dusk "}, headers=bearer(token))
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["title"] == "Tahiti at dusk" and renamed.json()["id"] == style.id
    (listed,) = client.get("/api/styles", headers=bearer(token)).json()["personal"]
    assert listed["title"] == "Tahiti at dusk"
    for body, code in [
        ({"name": " "}, "invalid_parameter"),
        ({"name": "x" * 81}, "invalid_parameter"),
        ({"name": "tab\x00bed"}, "invalid_parameter"),
        ({"name": "ok", "owner": "me"}, "invalid_parameter"),
        ({}, "invalid_parameter"),
    ]:
        refused = client.patch(url, json=body, headers=bearer(token))
        assert refused.status_code in (400, 422), (body, refused.text)
        assert refused.json()["error"]["code"] == code
    stranger = client.patch(url, json={"name": "theirs"}, headers=bearer(new_token()[0]))
    assert stranger.status_code == 404
    anonymous = client.patch(url, json={"name": "theirs"})
    assert anonymous.status_code == 404
    assert app.state.backend.personal.get(style.id).name == "Tahiti at dusk"


def test_the_artefact_report_names_stripes_and_passes_a_clean_photo() -> None:
    photo = resize_tensor_to_long_side(as_tensor(list_images(refine_photos())[2]), 256)
    striped = photo.clone()  # red and green 1-px hairlines, every 4 columns
    striped[:, 0, :, ::4] = (striped[:, 0, :, ::4] + 0.15).clamp(0, 1)
    striped[:, 1, :, 2::4] = (striped[:, 1, :, 2::4] + 0.15).clamp(0, 1)

    clean = artefact_report([(photo, photo)])
    assert clean.flagged == [] and clean.flags == [] and clean.checked_photos == 1
    assert 1 <= clean.streaks < 1.25 and 0 < clean.grid < 0.005 and clean.seams > 1

    report = artefact_report([(photo, photo), (photo, striped)])
    assert report.checked_photos == 2
    assert report.streaks > 5 * clean.streaks and report.grid > 100 * clean.grid  # the worst
    assert report.flagged == ["streaks", "grid"]  # 4-column stripes are a 4-px grid too
    assert report.flags[0].startswith("fine colour stripes (streaks ")
    assert report.flags[1].startswith("a grid or checkerboard pattern (grid ")

    # A photo's own high measure raises its limit: the photo against itself passes however
    # high it scores.
    assert artefact_report([(striped, striped)]).flagged == []


# Refinements on a real server ----------------------------------------------------------------
@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    server = Service(tmp_path_factory.mktemp("refine-service"), TINY).start()
    yield server
    server.stop()


@pytest.fixture()
def http(service: Service) -> Iterator[httpx.Client]:
    with service.client() as c:
        yield c


def follow(client: httpx.Client, job: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", job["urls"]["events"], headers=auth(job), timeout=300) as stream:
        name = ""
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
                if name == "end":
                    break
    return events


def refine(client: httpx.Client, token: str | None = None, **fields: str) -> dict[str, Any]:
    form = {"painting_style": STYLE, **fields}
    headers = bearer(token) if token else {}
    response = client.post(
        "/api/refines", files={k: (None, v) for k, v in form.items()}, headers=headers
    )
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def photo_job(client: httpx.Client, style: str, token: str) -> httpx.Response:
    return client.post(
        "/api/jobs",
        files={"content": ("photo.jpg", jpeg(side=64), "image/jpeg")},
        data={"style": style, "method": "fast", "strength": "0.8", "preserve_color": "luminance"},
        headers=bearer(token),
    )


def test_a_refinement_makes_a_personal_style_only_its_token_can_use(
    http: httpx.Client, service: Service
) -> None:
    job = refine(http, name="Starry, mine")
    events = follow(http, job)
    assert events[-1][0] == "end" and events[-1][1]["status"] == "succeeded", events[-1]
    training = [e["training"] for n, e in events if n == "status" and e["training"]["step"]]
    assert training, events
    assert all(t["loss"] is not None and t["loss"] > 0 for t in training)
    assert all(0 <= t["seconds_left"] <= 3 for t in training)
    assert [n for n, _ in events].count("preview") >= 1
    assert any(
        n == "preview" and e["image"].startswith("data:image/jpeg;base64,") for n, e in events
    )
    style_id = job["style_id"]
    token = job["token"]

    styles = http.get("/api/styles", headers=bearer(token)).json()
    assert styles["refine"]["budgets_minutes"] == [0.05, 1]
    (mine,) = styles["personal"]
    assert mine["id"] == style_id and mine["title"] == "Starry, mine" and mine["owner"] == "you"
    assert mine["steps"] >= 1 and mine["kept"] is False and mine["expires_at"] > time.time()
    for url in (mine["thumbnail_url"], mine["preview_url"]):
        picture = http.get(url, params={"token": token})
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
        Image.open(io.BytesIO(picture.content)).verify()
    result = http.get(job["urls"]["result"], headers=auth(job)).json()
    assert result["id"] == style_id

    # The finished network was checked for artefacts on the first training photos: the job
    # says what the stored network gives on them.
    report = http.get(job["urls"]["self"], headers=auth(job)).json()["artefacts"]
    assert events[-1][1]["artefacts"] == report
    assert report["checked_photos"] == ARTEFACT_PHOTOS
    assert all(report[k] > 0 for k in ("streaks", "grid", "seams")), report
    assert set(report["flagged"]) <= {"streaks", "grid", "seams"}
    assert isinstance(report["flags"], list) and len(report["flags"]) == len(report["flagged"])
    network, _ = load_fast_network(service.data_dir / "styles" / style_id / "model.safetensors")
    again = artefact_check(network, refine_photos(), torch.device("cpu"))
    for k in ("streaks", "grid", "seams"):
        assert report[k] == pytest.approx(getattr(again, k), rel=1e-3), k
    assert report["flagged"] == again.flagged

    # Its token stylizes a photo with it, through the fast engine, with the usual options.
    made = photo_job(http, style_id, token)
    assert made.status_code == 202, made.text
    photo = made.json()
    assert wait(http, photo)["status"] == "succeeded"
    image = http.get(photo["urls"]["result"], headers=auth(photo))
    stylized = np.asarray(Image.open(io.BytesIO(image.content)).convert("RGB"), dtype=float)
    original = np.asarray(
        Image.open(io.BytesIO(jpeg(side=64))).convert("RGB").resize(stylized.shape[1::-1]),
        dtype=float,
    )
    assert np.abs(stylized - original).mean() > 3
    onnx = http.get(f"/api/styles/{style_id}/model.onnx", params={"token": token})
    assert onnx.status_code == 200 and len(onnx.content) > 10_000
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx.content, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"image": np.random.rand(1, 3, 32, 32).astype(np.float32)})
    assert output.shape == (1, 3, 32, 32)

    # Another token: as if it did not exist.
    other = new_token()[0]
    assert http.get("/api/styles", headers=bearer(other)).json()["personal"] == []
    for response in (
        photo_job(http, style_id, other),
        http.get(f"/api/styles/{style_id}/model.onnx", params={"token": other}),
        http.get(mine["thumbnail_url"], params={"token": other}),
        http.get(mine["preview_url"]),
        http.delete(f"/api/styles/{style_id}", headers=bearer(other)),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "unknown_style"

    folder = service.data_dir / "styles" / style_id
    assert (folder / "model.safetensors").is_file()
    assert http.delete(f"/api/styles/{style_id}", headers=bearer(token)).status_code == 204
    assert not folder.exists()
    assert http.get("/api/styles", headers=bearer(token)).json()["personal"] == []
    assert photo_job(http, style_id, token).status_code == 404


def test_refinements_queued_together_store_no_more_styles_than_the_quota(
    http: httpx.Client, service: Service
) -> None:
    """Four refinements queued at once by one token (quota 3) each pass the API's check, since
    no style exists yet; the worker checks again, so three store a style and the fourth fails
    with quota_full and leaves no files."""
    first = refine(http)
    token = first["token"]
    jobs = [first, *(refine(http, token) for _ in range(3))]
    ends = [wait(http, job, timeout=300) for job in jobs]
    assert sorted(end["status"] for end in ends) == ["failed", *["succeeded"] * 3], ends
    ((job, failed),) = [(j, e) for j, e in zip(jobs, ends, strict=True) if e["status"] == "failed"]
    assert failed["error"]["code"] == "quota_full", failed
    assert "RESTYLE_MAX_PERSONAL_STYLES" in failed["error"]["message"]
    personal = http.get("/api/styles", headers=bearer(token)).json()["personal"]
    assert len(personal) == 3 and job["style_id"] not in {s["id"] for s in personal}
    assert not (service.data_dir / "styles" / job["style_id"]).exists()
    for style in personal:  # the module's server is shared: leave it as it was
        assert http.delete(f"/api/styles/{style['id']}", headers=bearer(token)).status_code == 204


def photo_form(style: str, **fields: str) -> dict[str, Any]:
    return {
        "files": {"content": ("photo.jpg", jpeg(side=64), "image/jpeg")},
        "data": {"style": style, "method": "fast", "format": "png", **fields},
    }


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)


def test_a_personal_style_stylizes_at_once_and_a_video_only_for_its_token(
    http: httpx.Client, tmp_path: Path
) -> None:
    job = refine(http)
    assert wait(http, job, timeout=120)["status"] == "succeeded"
    style_id, token = job["style_id"], job["token"]

    # POST /api/stylize answers with the same picture as a queued job of the same form.
    now = http.post("/api/stylize", **photo_form(style_id), headers=bearer(token))
    assert now.status_code == 200, now.text
    assert now.headers["content-type"] == "image/png"
    queued = http.post("/api/jobs", **photo_form(style_id), headers=bearer(token)).json()
    assert wait(http, queued)["status"] == "succeeded"
    later = http.get(queued["urls"]["result"], headers=auth(queued))
    assert np.abs(pixels(now.content) - pixels(later.content)).max() <= 1
    photo = pixels(jpeg(side=64))
    assert pixels(now.content).shape == photo.shape
    assert np.abs(pixels(now.content) - photo).mean() > 3  # its network, not the photo

    # A video job: every frame through its network.
    clip = make_clip(tmp_path / "clip.mp4", frames=4, audio=False)
    video = {"files": {"content": ("clip.mp4", clip.read_bytes(), "video/mp4")}}
    fields = {"style": style_id, "method": "fast", "size": "32"}
    made = http.post("/api/jobs", **video, data=fields, headers=bearer(token))
    assert made.status_code == 202, made.text
    moving = made.json()
    assert moving["kind"] == "video"
    assert wait(http, moving)["status"] == "succeeded"
    result = tmp_path / "result.mp4"
    result.write_bytes(http.get(moving["urls"]["result"], headers=auth(moving)).content)
    frames = decoded(result)
    assert [f.shape for f in frames] == [(24, 32, 3)] * 4
    originals = [np.asarray(Image.fromarray(f).resize((32, 24)), float) for f in decoded(clip)]
    assert min(np.abs(f - o).mean() for f, o in zip(frames, originals, strict=True)) > 3

    # Another token: no such style, for either.
    other = bearer(new_token()[0])
    for response in (
        http.post("/api/stylize", **photo_form(style_id), headers=other),
        http.post("/api/jobs", **video, data=fields, headers=other),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "unknown_style"
    assert http.delete(f"/api/styles/{style_id}", headers=bearer(token)).status_code == 204


def test_cancelling_a_refinement_keeps_no_style_and_no_files(
    http: httpx.Client, service: Service
) -> None:
    job = refine(http, minutes="1")
    deadline = time.monotonic() + 120
    while True:
        status = http.get(f"/api/jobs/{job['id']}", headers=auth(job)).json()
        if status["status"] == "running" and status["training"]["step"] > 0:
            break
        assert time.monotonic() < deadline and status["status"] in ("queued", "running"), status
        time.sleep(0.1)
    cancelled = http.delete(f"/api/jobs/{job['id']}", headers=auth(job))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # The worker stops at its next step: free again long before the minute is up.
    started = time.monotonic()
    after = refine(http, job["token"])
    assert wait(http, after, timeout=60)["status"] == "succeeded"
    assert time.monotonic() - started < 45
    final = http.get(f"/api/jobs/{job['id']}", headers=auth(job)).json()
    assert final["status"] == "cancelled"
    listed = http.get("/api/styles", headers=auth(job)).json()["personal"]
    assert [s["id"] for s in listed] == [after["style_id"]]
    assert not (service.data_dir / "styles" / job["style_id"]).exists()
    assert list((service.data_dir / "jobs" / job["id"]).iterdir()) == []


# Scale-out: the API and a `restyle worker` on a real redis-server ----------------------------
FAST_SWEEP = {
    "heartbeat_s": "0.5",
    "heartbeat_timeout_s": "4",
    "cleanup_interval_s": "1",
    "requeue_grace_s": "2",
}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("refine-redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def scaled(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[Service]:
    settings = {"redis_url": redis_server.url, **TINY, **FAST_SWEEP}
    server = Service(tmp_path_factory.mktemp("refine-api"), settings).start()
    yield server
    server.stop()


@pytest.fixture()
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_styles_stored_at_once_never_pass_the_quota(
    store: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Workers finishing together: each store counts the owner's styles and stores in one step,
    so of eight stores at once with room for three, three land and the others leave nothing."""
    from restyle.service.stores.embedded import EmbeddedBackend
    from restyle.service.stores.redis_backend import RedisBackend

    if store == "redis":
        backend: Backend = RedisBackend(
            ServiceSettings(data_dir=tmp_path, redis_url=redis_server.url)
        )
    else:
        backend = EmbeddedBackend(ServiceSettings(data_dir=tmp_path))
    _, owner = new_token()
    styles = [personal(owner) for _ in range(8)]

    def put(style: PersonalStyle) -> bool:
        return backend.personal.put(style, {"model.safetensors": b"x"}, most=3)

    try:
        with ThreadPoolExecutor(len(styles)) as pool:
            stored = list(pool.map(put, styles))
        assert sorted(stored) == [False] * 5 + [True] * 3
        landed = {s.id for s, ok in zip(styles, stored, strict=True) if ok}
        assert {s.id for s in backend.personal.of_owner(owner)} == landed
        for style in styles:
            has_file = backend.personal.file(style.id, "model.safetensors") is not None
            assert has_file == (style.id in landed)
    finally:
        for style in styles:
            backend.personal.delete(style.id)
        backend.stop()


def start_worker(workers: list[Worker], redis_server: RedisServer, folder: Path) -> Worker:
    worker = Worker(redis_server.url, folder, {**TINY, **FAST_SWEEP}).start()
    workers.append(worker)
    return worker


def test_a_worker_process_refines_and_its_style_is_used_from_redis(
    scaled: Service, redis_server: RedisServer, workers: list[Worker], tmp_path: Path
) -> None:
    start_worker(workers, redis_server, tmp_path)
    with scaled.client() as client:
        painting = {"painting": ("mine.jpg", jpeg("cat", side=128), "image/jpeg")}
        response = client.post("/api/refines", files=painting)
        assert response.status_code == 202, response.text
        job = response.json()
        final = wait(client, job, timeout=120)
        assert final["status"] == "succeeded", final
        assert final["training"]["step"] >= 1 and final["training"]["seconds_left"] == 0
        token, style_id = job["token"], job["style_id"]
        (mine,) = client.get("/api/styles", headers=bearer(token)).json()["personal"]
        assert mine["id"] == style_id and mine["source"] is None
        stored = redis.Redis.from_url(redis_server.url)
        assert stored.exists(f"restyle:style:{style_id}:model.safetensors")
        made = photo_job(client, style_id, token)
        assert made.status_code == 202, made.text
        assert wait(client, made.json())["status"] == "succeeded"
        onnx = client.get(f"/api/styles/{style_id}/model.onnx", params={"token": token})
        assert onnx.status_code == 200 and len(onnx.content) > 10_000
        assert client.delete(f"/api/styles/{style_id}", headers=bearer(token)).status_code == 204
        assert not stored.keys(f"restyle:style:{style_id}*")


@pytest.mark.slow  # about 20 s: two workers start, one is killed mid-training
def test_a_worker_killed_mid_refinement_leaves_the_job_retried(
    scaled: Service, redis_server: RedisServer, workers: list[Worker], tmp_path: Path
) -> None:
    with scaled.client() as client:
        job = refine(client, minutes="1")
        doomed = start_worker(workers, redis_server, tmp_path)
        deadline = time.monotonic() + 120
        while not (current := client.get(f"/api/jobs/{job['id']}", headers=auth(job)).json())[
            "training"
        ]["step"]:
            assert time.monotonic() < deadline and current["status"] != "failed", current
            time.sleep(0.1)
        doomed.stop(kill=True)  # mid-training: its heartbeats stop
        start_worker(workers, redis_server, tmp_path)
        deadline = time.monotonic() + 60
        while (current := client.get(f"/api/jobs/{job['id']}", headers=auth(job)).json())[
            "attempts"
        ] < 2 or current["training"]["step"] == 0:
            assert time.monotonic() < deadline and current["status"] != "failed", current
            time.sleep(0.2)
        assert current["status"] == "running", current  # the second attempt trains
        cancelled = client.delete(f"/api/jobs/{job['id']}", headers=auth(job))
        assert cancelled.json()["status"] == "cancelled"
        assert client.get("/api/styles", headers=auth(job)).json()["personal"] == []
