"""Video jobs in the HTTP service: a clip as a job's `content`, checked before it is queued,
stylized file to file by a worker, served with byte ranges.

The checks of an upload run in process (an app never started: no worker takes the job); the
jobs themselves run on a real `restyle serve` with real engines, on clips of 64×48 pixels.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from tests.service_processes import Service
from tests.test_service import auth, jpeg, wait
from tests.test_service_api import Client
from tests.video_clips import HEIGHT, WIDTH, audio_packets, make_clip, sound

from restyle.service.app import create_app
from restyle.service.jobs import JobStatus
from restyle.service.settings import ServiceSettings
from restyle.service.sweeper import sweep
from restyle.video.config import VideoOptions

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    whole = make_clip(root / "whole.mp4", frames=16, faststart=True, noise=20.0)
    truncated = root / "truncated.mp4"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    not_video = root / "not-video.mp4"
    not_video.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(200))  # the signature, no more
    return {
        "short": make_clip(root / "short.mp4", frames=12, noise=4.0),  # 0.48 s, with sound
        "silent": make_clip(root / "silent.mp4", frames=10, audio=False),
        "frames30": make_clip(root / "frames30.mp4", frames=30, audio=False),  # 1.2 s
        # WebM declares no frame count: the duration and rate tell.
        "frames30_webm": make_clip(
            root / "frames30.webm", frames=30, audio=False, codec="libvpx-vp9"
        ),
        "long": make_clip(root / "long.mp4", frames=60, audio=False),  # 2.4 s
        "wide": make_clip(root / "wide.mp4", frames=4, audio=False, width=128, height=96),
        "truncated": truncated,
        "not_video": not_video,
        "many": make_clip(root / "many.mp4", frames=600, audio=False),  # 24 s: to cancel
    }


def video_form(path: Path, name: str = "clip.bin", **fields: str) -> dict[str, Any]:
    """A job's form with `path` as its content, under a name that says nothing: the server
    recognises a video by its bytes."""
    return {
        "files": {"content": (name, path.read_bytes(), "application/octet-stream")},
        "data": {"style": "starry-night", **fields},
    }


# What the API checks before a job exists ----------------------------------------------------
TIGHT = {
    "max_video_bytes": 200_000,
    "max_video_seconds": 2.0,
    "max_video_frames": 20,
    "max_video_pixels": 64 * 48 * 2,
    "max_video_size": 64,
}


@pytest.fixture()
def tight(tmp_path: Path) -> Iterator[tuple[Client, Path]]:
    app = create_app(ServiceSettings(data_dir=tmp_path / "data", **TIGHT))  # type: ignore[arg-type]
    client = Client(app)
    yield client, tmp_path / "data"
    client.close()
    app.state.backend.stop()


@pytest.mark.parametrize(
    ("clip", "fields", "status", "code", "words"),
    [
        ("long", {}, 413, "video_too_long", "2.4 s of video, over this server's limit of 2 s"),
        ("frames30", {}, 413, "video_too_long", "30 frames, over this server's limit of 20"),
        ("frames30_webm", {}, 413, "video_too_long", "30 frames, over this server"),
        ("wide", {}, 413, "video_too_large", "128x96 frames (12288 pixels)"),
        ("short", {"size": "96"}, 400, "invalid_parameter", "size: 16..64 for fast videos"),
        ("not_video", {}, 400, "invalid_video", "content: not a readable video"),
        ("truncated", {}, 400, "invalid_video", "truncated or damaged"),
        ("short", {"method": "gatys"}, 400, "invalid_parameter", "does not take videos"),
        ("short", {"format": "png"}, 400, "invalid_parameter", "the result is one of mp4, webm"),
        ("short", {"format": "gif"}, 400, "invalid_parameter", "format"),
        ("short", {"temporal_strength": "2"}, 400, "invalid_parameter", "temporal_strength"),
    ],
)  # fmt: skip
def test_a_video_over_a_limit_or_unreadable_is_refused_before_queueing(
    tight: tuple[Client, Path],
    clips: dict[str, Path],
    clip: str,
    fields: dict[str, str],
    status: int,
    code: str,
    words: str,
) -> None:
    client, data_dir = tight
    response = client.post("/api/jobs", **video_form(clips[clip], **fields))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert words in error["message"], error["message"]
    assert str(data_dir) not in response.text and ".upload" not in response.text
    assert list((data_dir / "incoming").iterdir()) == []  # the spooled upload is gone
    assert list((data_dir / "jobs").iterdir()) == []  # and no job exists


def test_video_bytes_over_the_limit_are_a_413(tmp_path: Path, clips: dict[str, Path]) -> None:
    size = clips["short"].stat().st_size
    settings = ServiceSettings(data_dir=tmp_path, max_video_bytes=size - 1)
    app = create_app(settings)
    client = Client(app)
    try:
        response = client.post("/api/jobs", **video_form(clips["short"]))
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "too_large"
        assert "RESTYLE_MAX_VIDEO_BYTES" in response.json()["error"]["message"]
        # A body over every upload limit together is cut off while it streams.
        limit = max(settings.max_upload_bytes, settings.max_video_bytes)
        huge = {"content": ("x.mp4", bytes(limit + settings.max_style_upload_bytes + 10**6))}
        streamed = client.post("/api/jobs", files=huge, data={"style": "starry-night"})
        assert streamed.status_code == 413 and streamed.headers["connection"] == "close"
    finally:
        client.close()
        app.state.backend.stop()
    assert list((tmp_path / "incoming").iterdir()) == []


def test_a_video_job_is_queued_with_its_kind_frames_and_format(
    tight: tuple[Client, Path], clips: dict[str, Path]
) -> None:
    client, data_dir = tight
    response = client.post("/api/jobs", **video_form(clips["short"], temporal_strength="0.5"))
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "video" and job["frames"] == {"done": 0, "total": 12}
    assert job["options"]["format"] == "mp4" and job["options"]["temporal_strength"] == 0.5
    stored = data_dir / "jobs" / job["id"] / "content"
    assert stored.read_bytes() == clips["short"].read_bytes()  # moved in, whole
    assert list((data_dir / "incoming").iterdir()) == []
    assert "size" not in job["options"]  # within max_video_size: the clip's own size
    photo = client.post(
        "/api/jobs", files={"content": ("a.jpg", jpeg(side=64))}, data={"style": "starry-night"}
    )
    assert photo.json()["kind"] == "image" and photo.json()["frames"] is None
    for refused in ({"format": "mp4"}, {"temporal_strength": "0.5"}):
        image = client.post(
            "/api/jobs",
            files={"content": ("a.mp4", jpeg(side=64))},
            data={"style": "starry-night", **refused},
        )
        assert image.status_code == 400, image.text
    synchronous = client.post("/api/stylize", **video_form(clips["short"]))
    assert synchronous.status_code == 400
    assert "POST /api/jobs" in synchronous.json()["error"]["message"]


def test_a_finished_video_job_expires_with_its_files(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    settings = ServiceSettings(data_dir=tmp_path)
    app = create_app(settings)
    client, backend = Client(app), app.state.backend
    try:
        job = client.post("/api/jobs", **video_form(clips["short"])).json()
        folder = tmp_path / "jobs" / job["id"]
        (folder / "result").write_bytes(b"a finished video")
        backend.jobs.update(job["id"], status=JobStatus.SUCCEEDED, finished_at=time.time())
        sweep(backend, settings, now=time.time() + settings.result_ttl_s + 1)
        assert backend.jobs.get(job["id"]) is None and not folder.exists()
    finally:
        client.close()
        backend.stop()


def test_a_clip_larger_than_the_video_size_is_scaled_down_to_it(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    app = create_app(ServiceSettings(data_dir=tmp_path, max_video_size=32))
    client = Client(app)
    try:
        job = client.post("/api/jobs", **video_form(clips["short"])).json()
        assert job["options"]["size"] == 32
        asked = client.post("/api/jobs", **video_form(clips["short"], size="16")).json()
        assert asked["options"]["size"] == 16
    finally:
        client.close()
        app.state.backend.stop()


def test_engines_publish_the_video_options_and_limits(tight: tuple[Client, Path]) -> None:
    client, _ = tight
    engines = {e["name"]: e for e in client.get("/api/engines").json()["engines"]}
    fast = engines["fast"]
    assert fast["limits"]["max_video_frames"] == TIGHT["max_video_frames"]
    assert fast["limits"]["max_video_seconds"] == TIGHT["max_video_seconds"]
    assert fast["limits"]["max_video_size"] == TIGHT["max_video_size"]
    assert fast["video_formats"] == ["mp4", "webm"]
    strength = fast["video_options"]["properties"]["temporal_strength"]
    declared = VideoOptions.__dataclass_fields__["temporal_strength"]
    assert strength["default"] == declared.default == 0.7
    assert (strength["minimum"], strength["maximum"]) == (0.0, 0.95)
    assert engines["gatys"]["video_options"] is None and engines["gatys"]["video_formats"] == []
    assert "max_video_frames" not in engines["gatys"]["limits"]


# Jobs on a real server ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    server = Service(tmp_path_factory.mktemp("video-service"), {"max_jobs_per_client": "8"}).start()
    yield server
    server.stop()


@pytest.fixture()
def client(service: Service) -> Iterator[httpx.Client]:
    with service.client() as c:
        yield c


def submit_video(client: httpx.Client, path: Path, **fields: str) -> dict[str, Any]:
    response = client.post("/api/jobs", **video_form(path, **fields))
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def follow(client: httpx.Client, job: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every server-sent event of a job until its end."""
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


def frames_of(data: bytes) -> tuple[int, str, tuple[int, int]]:
    """Decoded frames, codec and size of a video's bytes."""
    with av.open(io.BytesIO(data)) as clip:
        stream = clip.streams.video[0]
        decoded = sum(1 for _ in clip.decode(stream))
        return decoded, stream.codec_context.name, (stream.width, stream.height)


def test_a_video_job_runs_with_frame_progress_and_a_ranged_result(
    client: httpx.Client, clips: dict[str, Path], tmp_path: Path
) -> None:
    job = submit_video(client, clips["short"], method="fast", temporal_strength="0.5")
    events = follow(client, job)
    statuses = [e for n, e in events if n == "status"]
    assert events[-1][0] == "end" and events[-1][1]["status"] == "succeeded", events[-1]
    # (The frames while it runs are polled in the cancel test: 12 tiny frames take a moment.)
    done = [s["frames"]["done"] for s in statuses]
    assert done == sorted(done), statuses
    assert all(s["frames"]["total"] == 12 for s in statuses)
    assert events[-1][1]["frames"] == {"done": 12, "total": 12}
    previews = [e for n, e in events if n == "preview"]
    assert previews and previews[0]["image"].startswith("data:image/jpeg;base64,")

    url = job["urls"]["result"]
    whole = client.get(url, headers=auth(job))
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert f'filename="restyle-{job["id"]}.mp4"' in whole.headers["content-disposition"]
    assert whole.headers["accept-ranges"] == "bytes"
    assert frames_of(whole.content) == (12, "h264", (WIDTH, HEIGHT))
    kept = tmp_path / "result.mp4"
    kept.write_bytes(whole.content)
    assert audio_packets(kept) == audio_packets(clips["short"])  # the sound, untouched

    size = len(whole.content)
    part = client.get(url, headers={**auth(job), "Range": "bytes=100-299"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-299/{size}"
    assert part.content == whole.content[100:300]
    tail = client.get(url, headers={**auth(job), "Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == whole.content[-50:]
    outside = client.get(url, headers={**auth(job), "Range": f"bytes={size}-"})
    assert outside.status_code == 416 and outside.json()["error"]["code"] == "range_not_satisfiable"
    preview = client.get(job["urls"]["preview"], headers=auth(job))
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"


def test_a_webm_result_is_vp9(client: httpx.Client, clips: dict[str, Path]) -> None:
    job = submit_video(client, clips["silent"], format="webm", size="32")
    assert wait(client, job)["status"] == "succeeded"
    result = client.get(job["urls"]["result"], headers=auth(job))
    assert result.headers["content-type"] == "video/webm"
    assert frames_of(result.content) == (10, "vp9", (32, 24))


def test_a_webm_result_of_a_clip_with_aac_sound_has_its_sound_in_opus(
    client: httpx.Client, clips: dict[str, Path], tmp_path: Path
) -> None:
    # What the web page asks for in a browser without H.264, for a phone clip's AAC sound.
    job = submit_video(client, clips["short"], format="webm")
    assert job["options"]["format"] == "webm"
    assert wait(client, job)["status"] == "succeeded"
    result = client.get(job["urls"]["result"], headers=auth(job))
    assert result.headers["content-type"] == "video/webm"
    assert frames_of(result.content) == (12, "vp9", (WIDTH, HEIGHT))
    kept = tmp_path / "result.webm"
    kept.write_bytes(result.content)
    before, after = sound(clips["short"]), sound(kept)
    assert (before.codec, after.codec) == ("aac", "opus")
    assert after.start == pytest.approx(before.start, abs=0.005)
    assert after.seconds == pytest.approx(before.seconds, abs=0.03)
    assert after.pitch == pytest.approx(440, abs=3)


def test_cancelling_a_video_job_stops_it_and_keeps_no_result(
    client: httpx.Client, service: Service, clips: dict[str, Path]
) -> None:
    job = submit_video(client, clips["many"])
    deadline = time.monotonic() + 120
    while True:
        status = client.get(f"/api/jobs/{job['id']}", headers=auth(job)).json()
        if status["status"] == "running" and status["frames"]["done"] > 0:
            assert status["message"] == f"frame {status['frames']['done']} of 600", status
            assert status["progress"] == pytest.approx(status["frames"]["done"] / 600, abs=1e-3)
            break
        assert time.monotonic() < deadline and status["status"] in ("queued", "running"), status
        time.sleep(0.05)
    cancelled = client.delete(f"/api/jobs/{job['id']}", headers=auth(job))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    result = client.get(job["urls"]["result"], headers=auth(job))
    assert result.status_code == 409 and result.json()["error"]["code"] == "no_result"
    # The worker stops between batches: free again long before 600 frames could be done.
    after = submit_video(client, clips["silent"])
    assert wait(client, after, timeout=60)["status"] == "succeeded"
    final = client.get(f"/api/jobs/{job['id']}", headers=auth(job)).json()
    assert final["status"] == "cancelled" and final["frames"]["done"] < 600
    folder = service.data_dir / "jobs" / job["id"]
    assert list(folder.iterdir()) == []  # nothing kept: no result, no upload, no frame


def test_each_file_is_bounded_while_it_streams_in(tmp_path: Path) -> None:
    """A body may be as large as a video, but a photo is refused at the photo limit, before the
    rest of its body is read (the body limit alone would read on to the video's)."""
    settings = ServiceSettings(data_dir=tmp_path, max_upload_bytes=1 << 20)
    head = (
        b'--XyZ\r\nContent-Disposition: form-data; name="style"\r\n\r\nstarry-night\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="content"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0"
    )
    chunks, sent = 100, []  # 100 chunks of 64 kB: 6.4 MB, within the body limit

    async def body() -> AsyncIterator[bytes]:
        yield head
        for i in range(chunks):
            sent.append(i)
            yield bytes(64 << 10)
        yield b"\r\n--XyZ--\r\n"

    app = create_app(settings)
    client = Client(app)
    try:
        response = client.post(
            "/api/jobs",
            content=body(),
            headers={"content-type": "multipart/form-data; boundary=XyZ"},
        )
    finally:
        client.close()
        app.state.backend.stop()
    assert response.status_code == 413, response.text
    assert response.headers["connection"] == "close"
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (
        "too_large",
        f"content: over the upload limit of {1 << 20} bytes",
    )
    assert len(sent) <= 20  # about 1 MB of the 6.4 MB was read
