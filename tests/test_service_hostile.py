"""Hostile and malformed requests: each gets a 4xx JSON error naming the problem, and the
server stays healthy (a real `restyle serve` on loopback, with small limits)."""

from __future__ import annotations

import io
import pickle
import shutil
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from PIL import Image
from tests.service_processes import Service
from tests.test_service import auth, jpeg

pytestmark = pytest.mark.timeout(300)

LIMITS = {
    "max_upload_bytes": "1000000",
    "max_style_upload_bytes": "200000",
    "max_upload_pixels": "4000000",
    "max_size": "2048",
    "max_iterations": "500",
}


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height, with one tiny compressed row of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * (width * 3 + 1)))
        + chunk(b"IEND", b"")
    )


def bomb() -> bytes:
    """A few kB of PNG that decodes to 144 Mpx."""
    buffer = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def noisy_jpeg(side: int) -> bytes:
    """A JPEG that does not compress: random pixels."""
    import numpy as np

    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=100)
    return buffer.getvalue()


PHOTO = ("photo.jpg", jpeg(), "image/jpeg")
STYLE = {"style": "starry-night"}

# (name, request keyword arguments, expected status, a word the message must contain)
CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("corrupt image", {"files": {"content": ("a.jpg", b"\xff\xd8\xff" + b"x" * 500, "image/jpeg")}, "data": STYLE}, 400, "content"),
    ("truncated jpeg", {"files": {"content": ("a.jpg", jpeg(side=256)[:600], "image/jpeg")}, "data": STYLE}, 400, "content"),
    ("decompression bomb", {"files": {"content": ("b.png", bomb(), "image/png")}, "data": STYLE}, 413, "content"),
    ("30000x30000 header", {"files": {"content": ("h.png", png_header_only(30_000, 30_000), "image/png")}, "data": STYLE}, 413, "too large"),
    ("text file as photo", {"files": {"content": ("a.txt", b"hello world", "text/plain")}, "data": STYLE}, 400, "not an image"),
    ("pickle as painting", {"files": {"content": PHOTO, "style_image": ("p.jpg", pickle.dumps({"a": 1}), "image/jpeg")}, "data": {"method": "gatys"}}, 400, "style_image"),
    ("svg as photo", {"files": {"content": ("a.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")}, "data": STYLE}, 400, "not an image"),
    ("empty photo file", {"files": {"content": ("a.jpg", b"", "image/jpeg")}, "data": STYLE}, 400, "empty"),
    ("no photo", {"files": {"style_image": ("p.jpg", jpeg(), "image/jpeg")}, "data": {"method": "gatys"}}, 400, "content"),
    ("json body", {"json": {"content": "x", "style": "starry-night"}}, 415, "multipart"),
    ("empty body", {"content": b"", "headers": {"content-type": "multipart/form-data; boundary=x"}}, 400, "content"),
    ("malformed multipart", {"content": b"--y\r\ngarbage", "headers": {"content-type": "multipart/form-data; boundary=x"}}, 400, ""),
    ("unknown style", {"files": {"content": PHOTO}, "data": {"style": "mona-lisa"}}, 400, "mona-lisa"),
    ("path traversal style", {"files": {"content": PHOTO}, "data": {"style": "../../etc/passwd"}}, 400, "style"),
    ("style and painting", {"files": {"content": PHOTO, "style_image": ("p.jpg", jpeg(), "image/jpeg")}, "data": STYLE}, 400, "exactly one"),
    ("fast with a painting", {"files": {"content": PHOTO, "style_image": ("p.jpg", jpeg(), "image/jpeg")}, "data": {"method": "fast"}}, 400, "arbitrary"),
    ("unknown method", {"files": {"content": PHOTO}, "data": {**STYLE, "method": "magic"}}, 400, "method"),
    ("negative strength", {"files": {"content": PHOTO}, "data": {**STYLE, "strength": "-1"}}, 400, "strength"),
    ("NaN strength", {"files": {"content": PHOTO}, "data": {**STYLE, "strength": "nan"}}, 400, "strength"),
    ("infinite style weight", {"files": {"content": PHOTO}, "data": {**STYLE, "method": "gatys", "style_weight": "inf"}}, 400, "style_weight"),
    ("huge size", {"files": {"content": PHOTO}, "data": {**STYLE, "size": "100000"}}, 400, "size"),
    ("negative size", {"files": {"content": PHOTO}, "data": {**STYLE, "size": "-5"}}, 400, "size"),
    ("size not a number", {"files": {"content": PHOTO}, "data": {**STYLE, "size": "big"}}, 400, "size"),
    ("huge iterations", {"files": {"content": PHOTO}, "data": {**STYLE, "method": "gatys", "iterations": "1000000"}}, 400, "iterations"),
    ("zero iterations", {"files": {"content": PHOTO}, "data": {**STYLE, "method": "gatys", "iterations": "0"}}, 400, "iterations"),
    ("unknown field", {"files": {"content": PHOTO}, "data": {**STYLE, "exec": "rm -rf /"}}, 400, "exec"),
    ("unknown format", {"files": {"content": PHOTO}, "data": {**STYLE, "format": "exe"}}, 400, "format"),
    ("oversized painting upload", {"files": {"content": PHOTO, "style_image": ("p.jpg", noisy_jpeg(400), "image/jpeg")}, "data": {"method": "gatys"}}, 413, "style_image"),
    ("oversized body", {"files": {"content": ("a.jpg", b"\xff" * 2_000_000, "image/jpeg")}, "data": STYLE}, 413, "limit"),
]  # fmt: skip


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    server = Service(tmp_path_factory.mktemp("hostile"), LIMITS).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(service: Service) -> Iterator[httpx.Client]:
    with service.client() as c:
        yield c


@pytest.mark.parametrize(
    ("name", "request_args", "status", "word"), CASES, ids=[c[0] for c in CASES]
)
def test_hostile_job_requests_get_a_clear_4xx(
    client: httpx.Client, name: str, request_args: dict[str, Any], status: int, word: str
) -> None:
    response = client.post("/api/jobs", **request_args)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] and word.lower() in error["message"].lower(), error
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs/..%2f..%2fetc%2fpasswd",
        "/api/jobs/%2e%2e",
        "/api/jobs/AAAAAAAAAAAAAAAAAAAAAA",
        "/api/jobs/AAAAAAAAAAAAAAAAAAAAAA/result",
        "/api/styles/..%2f..%2fjobs.sqlite3/thumbnail",
        "/api/styles/mona-lisa/thumbnail",
        "/api/nothing-here",
    ],
)
def test_bad_paths_are_json_4xx(client: httpx.Client, path: str) -> None:
    response = client.get(path, headers={"Authorization": "Bearer x"})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"]


def test_the_server_is_healthy_and_working_after_all_that(client: httpx.Client) -> None:
    response = client.post("/api/stylize", files={"content": PHOTO}, data={**STYLE, "size": "64"})
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size[0] <= 64
    assert client.get("/readyz").status_code == 200


TOO_MANY = {
    "error": {"code": "too_many_jobs", "message": "at most 4 queued or running jobs per client"}
}


def burst(url: str, *, source: str, count: int = 16) -> list[Future[httpx.Response]]:
    """`count` job requests sent at the same moment from one client address (`source`, a
    loopback address of its own, so no other test's jobs count), every other one to
    POST /api/stylize."""
    start = threading.Barrier(count)

    def post(index: int) -> httpx.Response:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=url, transport=transport, timeout=120) as client:
            path = "/api/stylize" if index % 2 else "/api/jobs"
            start.wait()
            return client.post(path, files={"content": PHOTO}, data={**STYLE, "size": "64"})

    pool = ThreadPoolExecutor(count)
    futures = [pool.submit(post, i) for i in range(count)]
    pool.shutdown(wait=False)
    return futures


def outcomes(
    futures: list[Future[httpx.Response]], *, rejections: int, then: Any = None
) -> list[httpx.Response]:
    """The responses of a burst; `then()` runs once `rejections` of them are 429s (the admitted
    synchronous requests wait for their jobs, which may need it)."""
    deadline = time.monotonic() + 60
    while sum(f.done() and f.result().status_code == 429 for f in futures) < rejections:
        if all(f.done() for f in futures) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if then is not None:
        then()
    responses = [f.result(timeout=120) for f in futures]
    for response in responses:
        if response.status_code == 429:
            assert response.json() == TOO_MANY
    return responses


def test_concurrent_requests_cannot_pass_the_per_client_limit(
    service: Service, client: httpx.Client
) -> None:
    # The one worker is kept busy by a long job of another client, so nothing admitted ends
    # (and frees a slot) while the burst is answered.
    blocker = client.post(
        "/api/jobs",
        files={"content": PHOTO},
        data={**STYLE, "method": "gatys", "size": "64", "iterations": "500"},
    ).json()
    deadline = time.monotonic() + 60
    while client.get(blocker["urls"]["self"], headers=auth(blocker)).json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    def release() -> None:
        client.delete(blocker["urls"]["self"], headers=auth(blocker))

    results = outcomes(burst(service.url, source="127.0.0.6"), rejections=12, then=release)
    admitted = [r.status_code for r in results if r.status_code != 429]
    assert len(admitted) == 4, [r.status_code for r in results]
    assert set(admitted) <= {200, 202}
    for job in (r.json() for r in results if r.status_code == 202):  # let them end
        while client.get(job["urls"]["self"], headers=auth(job)).json()["status"] in (
            "queued",
            "running",
        ):
            time.sleep(0.1)


def test_readiness_follows_the_data_directory(service: Service, client: httpx.Client) -> None:
    # The job files' folder made unwritable. Permission bits do not stop root, which the tests
    # may run as; a file where the folder was stops anyone.
    files = service.data_dir / "jobs"
    files.rename(service.data_dir / "jobs.away")
    files.write_bytes(b"")
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {
            "ready": False,
            "mode": "embedded",
            "reason": "the data directory is not writable",
        }
        refused = client.post("/api/jobs", files={"content": PHOTO}, data=STYLE)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "store_unavailable"
    finally:
        files.unlink()
        shutil.move(service.data_dir / "jobs.away", files)
    assert client.get("/readyz").json() == {"ready": True, "mode": "embedded"}
