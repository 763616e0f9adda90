"""Hostile and malformed requests: each gets a 4xx JSON error naming the problem, and the
server stays healthy (a real `restyle serve` on loopback, with small limits). Slow and idle
clients are cut off in time; a failing store is a JSON 503 on a connection that stays usable;
no error body names a server path, and no log line holds a job's token."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import pickle
import re
import shutil
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from tests.service_processes import RedisServer, Service
from tests.test_service import auth, jpeg, wait
from tests.test_service_api import multipart_body

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
    ("multipart look-alike", {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-dataX; boundary=x"}}, 415, "multipart"),
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


def png_of(width: int, height: int) -> bytes:
    """A real PNG of width × height: a colour ramp along its long side."""
    import numpy as np

    ramp = np.linspace(0, 255, max(width, height), dtype=np.uint8)
    pixels = np.stack([ramp, ramp[::-1], np.full_like(ramp, 90)], axis=-1)
    rows = pixels[None] if width >= height else pixels[:, None]  # (H, W, 3)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rows)).resize((width, height)).save(buffer, "PNG")
    return buffer.getvalue()


LIVE = "/api/live/model.onnx"


@pytest.mark.parametrize(
    ("route", "fields"),
    [(LIVE, {}), ("/api/stylize", {"method": "arbitrary"}), ("/api/jobs", {"method": "gatys"})],
)
def test_a_painting_too_thin_for_every_engine_is_a_400_naming_the_problem(
    client: httpx.Client, route: str, fields: dict[str, str]
) -> None:
    files = {"style_image": ("scroll.png", png_of(1, 12000), "image/png")}
    if route != LIVE:
        files["content"] = PHOTO
    response = client.post(route, files=files, data=fields)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_image"
    assert response.json()["error"]["message"] == (
        "style_image: 1x12000 px is too thin (1:12000); at most 1:20 (the long side up to 20 "
        "times the short one)"
    )


def test_a_panoramic_painting_is_taken_and_a_thin_photo_refused_by_gatys_alone(
    client: httpx.Client,
) -> None:
    scroll = {"style_image": ("scroll.png", png_of(320, 40), "image/png")}  # 8:1
    network = client.post(LIVE, files=scroll)
    assert network.status_code == 200, network.text
    assert network.headers["content-type"] == "application/octet-stream"
    stylized = client.post(
        "/api/stylize",
        files={"content": PHOTO, **scroll},
        data={"method": "arbitrary", "size": "64"},
    )
    assert stylized.status_code == 200, stylized.text
    assert max(Image.open(io.BytesIO(stylized.content)).size) == 64
    # A 1x12000 photo: the feed-forward engines paint it; gatys's VGG19 cannot, and says so (in
    # the worker, from the library).
    thin = {"content": ("thin.png", png_of(1, 12000), "image/png")}
    fast = client.post("/api/stylize", files=thin, data={**STYLE, "size": "600"})
    assert fast.status_code == 200, fast.text
    assert Image.open(io.BytesIO(fast.content)).size == (1, 600)
    submitted = client.post(
        "/api/jobs",
        files={**thin, "style_image": ("p.jpg", jpeg(), "image/jpeg")},
        data={"method": "gatys", "iterations": "2"},
    )
    assert submitted.status_code == 202, submitted.text
    gatys = wait(client, submitted.json())
    assert gatys["status"] == "failed" and gatys["error"]["code"] == "invalid_image", gatys
    assert gatys["error"]["message"].startswith(
        "photo: too thin for the gatys engine at this size: it comes out 1x512 px, a side under "
        "the 16 px its VGG19 takes"
    )


def test_the_server_is_healthy_and_working_after_all_that(client: httpx.Client) -> None:
    response = client.post("/api/stylize", files={"content": PHOTO}, data={**STYLE, "size": "64"})
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size[0] <= 64
    assert client.get("/readyz").status_code == 200


# Slow clients, failing stores, secrets in logs -----------------------------------------------
TIGHT = {
    "header_timeout_s": "1",
    "body_timeout_s": "2",
    "keep_alive_timeout_s": "1",
    "limit_concurrency": "6",
}


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A server with short timeouts and a small concurrency limit."""
    server = Service(tmp_path_factory.mktemp("tight"), TIGHT).start()
    yield server
    server.stop()


def connect(service: Service) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", service.port))
    connection.settimeout(10)
    return connection


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the test's timeout bounds it)."""
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    return data


def multipart_request(body: bytes) -> bytes:
    head = (
        "POST /api/jobs HTTP/1.1\r\nHost: test\r\n"
        "Content-Type: multipart/form-data; boundary=XyZ\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode()


def test_silent_and_half_sent_requests_are_closed_after_the_header_timeout(
    tight: Service,
) -> None:
    silent = [connect(tight) for _ in range(3)]
    half = connect(tight)
    half.sendall(b"GET /heal")
    started = time.monotonic()
    for connection in [*silent, half]:
        assert read_until_closed(connection) == b""
        connection.close()
    assert time.monotonic() - started < 4  # header_timeout_s = 1


def test_a_dripping_body_gets_a_408_and_the_connection_is_closed(tight: Service) -> None:
    body = multipart_body()
    connection = connect(tight)
    connection.sendall(multipart_request(body) + body[:100])
    started = time.monotonic()
    with contextlib.suppress(OSError):  # the server may close before all of the drip is sent
        for byte in body[100:110]:
            connection.sendall(bytes([byte]))
            time.sleep(0.4)
    answer = read_until_closed(connection)
    connection.close()
    assert time.monotonic() - started < 6  # body_timeout_s = 2
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
    assert json.loads(payload)["error"]["code"] == "request_timeout"


def test_over_the_concurrency_limit_is_a_json_503_until_idle_connections_go(
    tight: Service,
) -> None:
    idle = [connect(tight) for _ in range(6)]
    busy = httpx.get(f"{tight.url}/healthz")
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy"
    assert busy.headers["retry-after"]
    for connection in idle:
        assert read_until_closed(connection) == b""  # closed by the header timeout
        connection.close()
    assert httpx.get(f"{tight.url}/healthz").status_code == 200


def test_tokens_never_reach_the_log(tight: Service) -> None:
    assert tight.log is not None
    with tight.client() as client:
        created = client.post("/api/jobs", files={"content": PHOTO}, data=STYLE)
        assert created.status_code == 202, created.text
        job, token = created.json()["id"], created.json()["token"]
        others = ["not-a-token-" + "x" * 20, "another-secret-" + "y" * 20]
        requests = [
            (f"/api/jobs/{job}?token={token}", {}),
            (f"/api/jobs/{job}/result?size=1&token={token}&x=1", {}),
            (f"/api/jobs/{job}?%74oken={token}", {}),  # the key percent-encoded
            (f"/api/jobs/{job}", {"Authorization": f"Bearer {token}"}),
            (f"/api/jobs/{job}?token={others[0]}", {}),  # a wrong token: 403
            (f"/api/nothing?token={others[1]}", {}),  # no such route: 404
        ]
        for url, headers in requests:
            assert client.get(url, headers=headers).status_code < 500
        client.delete(f"/api/jobs/{job}", headers={"Authorization": f"Bearer {token}"})
    time.sleep(0.5)  # the log is written by another process
    log = tight.log.read_text()
    assert log.count("[redacted]") >= 5, log[-3000:]
    for secret in [token, *others]:
        assert secret not in log


def test_a_broken_data_directory_is_a_503_json_on_a_usable_connection(tight: Service) -> None:
    """Job uploads cannot be stored (the jobs folder is gone, a file in its place): a JSON 503
    with a request id that the log line has too, no path in the body, and the same keep-alive
    connection answers the next request."""
    assert tight.log is not None
    jobs = tight.data_dir / "jobs"
    kept = jobs.rename(tight.data_dir / "jobs-kept")
    jobs.write_text("not a folder")
    connection = http.client.HTTPConnection("127.0.0.1", tight.port, timeout=30)
    try:
        body = multipart_body()
        connection.request(
            "POST",
            "/api/jobs",
            body=body,
            headers={"Content-Type": "multipart/form-data; boundary=XyZ"},
        )
        response = connection.getresponse()
        payload = response.read()
        socket_used = connection.sock
        assert response.status == 503, payload
        error = json.loads(payload)["error"]
        assert error["code"] == "store_unavailable" and response.getheader("retry-after")
        assert error["request_id"] == response.getheader("x-request-id")
        assert str(tight.data_dir) not in payload.decode()
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() == b'{"status":"ok"}'
        assert connection.sock is socket_used  # the server kept the connection open
    finally:
        connection.close()
        jobs.unlink()
        kept.rename(jobs)
    time.sleep(0.5)
    log = tight.log.read_text()
    assert f"request {error['request_id']} POST /api/jobs failed" in log


def test_store_errors_with_redis_away_are_json_503s(tmp_path: Path) -> None:
    """Redis stops: creating, reading, cancelling and synchronous stylizing all answer a JSON
    503 `store_unavailable` on the same connection, and no body names Redis's address."""
    redis_server = RedisServer(tmp_path).start()
    # Each call retries through an outage of store_retry_s before answering (30 s by default).
    settings = {"redis_url": redis_server.url, "store_retry_s": "1"}
    service = Service(tmp_path / "api", settings).start()
    try:
        with service.client() as client:
            created = client.post("/api/jobs", files={"content": PHOTO}, data=STYLE).json()
            auth = {"Authorization": f"Bearer {created['token']}"}
            redis_server.stop()
            calls = [
                ("POST", "/api/jobs", {"files": {"content": PHOTO}, "data": STYLE}),
                ("GET", f"/api/jobs/{created['id']}", {"headers": auth}),
                ("DELETE", f"/api/jobs/{created['id']}", {"headers": auth}),
                ("POST", "/api/stylize", {"files": {"content": PHOTO}, "data": STYLE}),
            ]
            for method, url, arguments in calls:
                response = client.request(method, url, **arguments)
                assert response.status_code == 503, (url, response.text)
                assert response.json()["error"]["code"] == "store_unavailable"
                assert str(redis_server.port) not in response.text
                assert response.headers.get("connection") != "close"
    finally:
        service.stop()
        redis_server.stop()


TOO_MANY = r"at most 4 queued or running (interactive|heavy) jobs per client"


def burst(
    url: str, *, source: str, count: int = 16, heavy: bool = False
) -> list[Future[httpx.Response]]:
    """`count` job requests sent at the same moment from one client address (`source`, a
    loopback address of its own, so no other test's jobs count): quick ones, every other one to
    POST /api/stylize, or with `heavy` Gatys jobs (the heavy lane)."""
    start = threading.Barrier(count)
    fields = {**STYLE, "size": "64"}
    if heavy:
        fields |= {"method": "gatys", "iterations": "20"}

    def post(index: int) -> httpx.Response:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=url, transport=transport, timeout=120) as client:
            path = "/api/stylize" if index % 2 and not heavy else "/api/jobs"
            start.wait()
            return client.post(path, files={"content": PHOTO}, data=fields)

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
            error = response.json()["error"]
            assert error["code"] == "too_many_jobs" and re.fullmatch(TOO_MANY, error["message"])
    return responses


def test_concurrent_requests_cannot_pass_the_per_client_limit(
    service: Service, client: httpx.Client
) -> None:
    # The heavy lane's one worker is kept busy by a long job of another client, so nothing
    # admitted ends (and frees a slot) while a burst of heavy jobs is answered. (The limit
    # counts each lane on its own; the quick lane's count is tested with no worker at all in
    # test_service_redis.py, where a burst mixes POST /api/jobs and POST /api/stylize.)
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

    requests = burst(service.url, source="127.0.0.6", heavy=True)
    results = outcomes(requests, rejections=12, then=release)
    admitted = [r.status_code for r in results if r.status_code != 429]
    assert len(admitted) == 4, [r.status_code for r in results]
    assert set(admitted) == {202}
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


# Small uploads that decode to gigabytes -------------------------------------------------------
BUDGET = {
    "max_upload_bytes": "1000000",
    "max_upload_pixels": "40000000",
    "default_size": "256",
    "max_gatys_megapixel_iterations": "20",
}


def deep_png(side: int) -> bytes:
    """A 16-bit greyscale PNG of side² pixels in under 100 kB: sparse dots on black."""
    import numpy as np

    pixels = np.zeros((side, side), dtype=np.uint16)
    pixels[::7, ::5] = 40_000
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def float_tiff(side: int) -> bytes:
    """A 32-bit float greyscale TIFF of side² pixels, deflated to a few hundred kB."""
    import numpy as np

    pixels = np.zeros((side, side), dtype=np.float32)
    pixels[::9, ::3] = 0.5
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="F").save(buffer, format="TIFF", compression="tiff_deflate")
    return buffer.getvalue()


def memory_mib(service: Service) -> dict[str, float]:
    """The server process's resident memory now (VmRSS) and at its peak so far (VmHWM)."""
    assert service.process is not None
    status = Path(f"/proc/{service.process.pid}/status").read_text()
    return {
        line.split(":")[0]: int(line.split()[1]) / 1024
        for line in status.splitlines()
        if line.startswith(("VmRSS:", "VmHWM:"))
    }


@pytest.fixture(scope="module")
def budget(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    server = Service(tmp_path_factory.mktemp("budget"), BUDGET).start()
    yield server
    server.stop()


def test_small_uploads_that_decode_huge_stay_within_the_budget(budget: Service) -> None:
    """Three uploads of 0.1-0.3 MB that decode to 40 Mpx each: the API reads their headers only
    and the worker (a thread of the same process) decodes them no larger than the default
    output size needs; each result is at most `default_size`, and the server's peak memory
    grows by less than 350 MiB (measured: +262 on a 2-core CPU; before, the API alone
    decoded each upload in full: +1.7 GB for one 16-bit PNG)."""
    uploads = [
        ("deep.png", deep_png(6300)),
        ("deep2.png", deep_png(6000)),
        ("f.tif", float_tiff(6300)),
    ]
    assert all(len(data) < 400_000 for _, data in uploads)
    with budget.client() as client:
        warm = client.post("/api/stylize", files={"content": PHOTO}, data=STYLE)
        assert warm.status_code == 200, warm.text  # the model is loaded before measuring
        before = memory_mib(budget)
        jobs = []
        for name, data in uploads:
            response = client.post("/api/jobs", files={"content": (name, data)}, data=STYLE)
            assert response.status_code == 202, response.text
            assert response.json()["options"]["size"] == 256  # the budget, shown to the client
            jobs.append(response.json())
        for job in jobs:
            deadline = time.monotonic() + 120
            while (status := client.get(job["urls"]["self"], headers=auth(job)).json())[
                "status"
            ] in ("queued", "running"):
                assert time.monotonic() < deadline, status
                time.sleep(0.2)
            assert status["status"] == "succeeded", status
            result = client.get(job["urls"]["result"], headers=auth(job)).content
            assert Image.open(io.BytesIO(result)).size == (256, 256)
        after = memory_mib(budget)
    growth = after["VmHWM"] - before["VmHWM"]
    print(f"server memory (MiB): before {before}, after {after}, peak growth {growth:.0f}")
    assert growth < 350, (before, after)


def test_the_budget_is_in_the_engines_schema_and_enforced(budget: Service) -> None:
    with budget.client() as client:
        engines = {e["name"]: e for e in client.get("/api/engines").json()["engines"]}
        video = {k for k in engines["fast"]["limits"] if k.startswith("max_video_")}
        assert video == {f"max_video_{k}" for k in ("bytes", "seconds", "frames", "pixels", "size")}
        photo = {k: v for k, v in engines["fast"]["limits"].items() if k not in video}
        assert photo == {"default_size": 256}
        assert engines["gatys"]["limits"] == {"default_size": 256, "max_megapixel_iterations": 20}
        small = client.post(
            "/api/jobs", files={"content": PHOTO}, data={**STYLE, "size": "96"}
        )  # an explicit size is kept (and checked against RESTYLE_MAX_SIZE)
        assert small.status_code == 202 and small.json()["options"]["size"] == 96
        costly = {**STYLE, "method": "gatys", "size": "512", "iterations": "300"}
        response = client.post("/api/jobs", files={"content": PHOTO}, data=costly)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "over_budget"
    assert "300 iterations" in error["message"]
    assert "over this server's 20 (RESTYLE_MAX_GATYS_MEGAPIXEL_ITERATIONS)" in error["message"]
