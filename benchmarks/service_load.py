"""Load test of `restyle serve`: throughput, latency and memory of POST /api/stylize under load,
alone or beside a stream of heavy (gatys) jobs (`--mixed`).

What is measured, on one machine:

1. The raw engine, as the reference: `restyle.api.stylize(jpeg_bytes, STYLE, method="fast",
   size=SIZE)` called in a loop in this process, each call followed by encoding the output in
   the format the service returns (PNG by default, `--format`; `restyle.imaging.encode_image`,
   as the service encodes them), so decoding the upload and encoding the result are counted on both
   sides. Two untimed warm-up calls, then as many calls as fit in `--raw-seconds`; images/s.
   It always runs the Restyle this Python imports, whatever `--server-src` says.
2. The service: `restyle serve` is started as a subprocess on a free loopback port with a fresh
   temporary RESTYLE_DATA_DIR (other RESTYLE_* variables are inherited; `--interactive-workers`
   and `--heavy-workers` set RESTYLE_INTERACTIVE_WORKERS and RESTYLE_HEAVY_WORKERS, the threads
   of the embedded server's two lanes, and are left unset unless given, so that a server from
   before the lanes, which ignores them, runs as it would; RESTYLE_MAX_JOBS_PER_CLIENT is raised
   to `--clients` (and `--heavy-in-flight`) unless set, since all clients share one loopback
   address and the per-client limit counts /api/stylize). `--server-src PATH` runs the server
   from another checkout's `src` folder (PYTHONPATH=PATH for the server only), e.g. a git
   worktree of an older commit, so that before and after are measured on the same machine; the
   JSON records the folder the server's `restyle` package came from and its git commit. After
   /readyz answers, one priming request loads the model (its latency is reported as the cold
   start) and checks the returned image. Then `--clients` concurrent asyncio
   clients (httpx, one connection each) loop POST /api/stylize with the same photo and options.
   Warm-up lasts until every client has had an answer (so the queue is in its steady state) and
   at least `--warmup-seconds` more have passed; then the measured window of `--seconds` starts.
   At its end clients send nothing new and their last requests are let finish (not counted).
   A request counts when it completes inside the window: throughput is the successful ones over
   the window's length, latency (from sending to the whole body received) is theirs. Any
   non-200 answer, unexpected content type or exception is an error.
3. The server's resident memory: VmRSS of its process (and of any children) from /proc, every
   `--rss-interval` seconds from the start of the load until the clients are done; reported are
   the RSS before any load, the RSS after the priming request, the peak, and the kernel's own
   high-water mark (VmHWM) of the server process.

Mixed load (`--mixed`): the same interactive clients, plus one heavy client that keeps
`--heavy-in-flight` gatys jobs queued or running at all times (POST /api/jobs, method gatys,
the photo at `--heavy-size`, the style, default iterations; it polls GET /api/jobs/{id} every
`--heavy-poll` seconds and submits a new job as soon as one has finished). It connects from
127.0.0.2, so the service, which counts its per-client limits by address, sees another client.
The heavy stream starts first, and the interactive clients once its first job runs: both a server
with lanes and one with a single queue then start from the same state, a gatys job running.
For the window, besides the interactive numbers above: the gatys jobs that succeeded inside it
(finished_at in the window; per minute), their median run time (started_at to finished_at) and
median wait (created_at to started_at), the heavy work done in the window in jobs, from the
jobs' own progress (a job longer than the window still shows), and the share of the window in
which a gatys job was running. At the end of the window the heavy jobs still queued or running
are cancelled (DELETE). A gatys job at 512 px takes about 40 s alone on the 2-core development
machine, so a 60 s window holds few of them: the work and running share say more than the count.
In the JSON the interactive numbers stay under `service`, as without `--mixed`, and the heavy
stream's are under `mixed.heavy`, with every job's times from the window's start.

The input is a real photo center-cropped and resized to SIZE x SIZE and encoded once as JPEG
(quality 95): the bundled `parrots` example unless `--photo`. The clients run in this process,
on the same CPUs as the server: on a small machine they take a share of them, and the ratio
service/raw includes that cost. The raw engine is measured before the server starts, so the two
never compete. Nothing else on the machine is paused: run it on a quiet machine (the JSON keeps
the load average at the start, `machine.loadavg_1_5_15`, and at the end).

Usage (from the repository root, with Restyle and httpx installed, e.g. in .venv):

    python benchmarks/service_load.py                       # 32 clients, 60 s, 20 s raw
    python benchmarks/service_load.py --clients 4 --seconds 10 --raw-seconds 5   # smoke run
    python benchmarks/service_load.py --format jpeg --interactive-workers 2 --json load.json

Mixed load, this checkout against the commit before the lanes (4dd8284), on the same machine:

    git worktree add /tmp/restyle-before 4dd8284
    python benchmarks/service_load.py --mixed --seconds 60 --json docs/benchmarks-service-mixed.json
    python benchmarks/service_load.py --mixed --seconds 60 --server-src /tmp/restyle-before/src \\
        --json docs/benchmarks-service-mixed-4dd8284.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageOps

STYLE = "starry-night"
METHOD = "fast"
FORMATS = {  # the service's output formats: Pillow's name and the MIME type it answers with
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
}
RAW_WARMUP_CALLS = 2
MAX_ERROR_MESSAGES = 5
MIB = 1024 * 1024


# --- the input ---------------------------------------------------------------------------------
def default_photo() -> Path:
    from restyle.examples import example_path

    path = example_path("parrots")
    if path is None or not Path(path).is_file():
        raise SystemExit("the bundled 'parrots' photo is missing: pass --photo")
    return Path(path)


def square_jpeg(path: Path, side: int) -> bytes:
    """The photo center-cropped and resized to side x side, encoded as JPEG (quality 95)."""
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    square = ImageOps.fit(image, (side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    square.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def encode(image: Image.Image, fmt: str) -> bytes:
    """Encode with the library's one encoder, which the service's runner uses too."""
    from restyle.imaging import encode_image

    return encode_image(image, format=FORMATS[fmt][0])


# --- the raw engine ----------------------------------------------------------------------------
@dataclass
class RawResult:
    images: int
    seconds: float
    images_per_s: float
    median_s: float
    torch_threads: int


def measure_raw(jpeg: bytes, size: int, fmt: str, seconds: float) -> RawResult:
    import torch

    from restyle.api import stylize

    def once() -> None:
        encode(stylize(jpeg, STYLE, method=METHOD, size=size), fmt)

    for _ in range(RAW_WARMUP_CALLS):
        once()
    durations: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        began = time.perf_counter()
        once()
        durations.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    return RawResult(
        images=len(durations),
        seconds=elapsed,
        images_per_s=len(durations) / elapsed,
        median_s=statistics.median(durations),
        torch_threads=torch.get_num_threads(),
    )


# --- the server --------------------------------------------------------------------------------
@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("restyle")
    base = [str(script)] if script.is_file() else [sys.executable, "-m", "restyle"]
    return [*base, "serve", "--host", "127.0.0.1", "--port", str(port)]


def server_env(args: argparse.Namespace, data_dir: Path) -> dict[str, str]:
    """The server's environment: this one, its own data dir, the options' variables."""
    env = {**os.environ, "RESTYLE_DATA_DIR": str(data_dir)}
    # Every client of the load shares one address (the heavy client has its own), and the limit
    # counts each /api/stylize in flight: the default of 4 would refuse most of them.
    heavy = args.heavy_in_flight if args.mixed else 0
    env.setdefault("RESTYLE_MAX_JOBS_PER_CLIENT", str(max(args.clients, heavy, 4)))
    # Set only when asked: a server from before the lanes knows RESTYLE_WORKERS instead, and an
    # unknown RESTYLE_* variable is ignored, so it would run with its own default either way.
    if args.interactive_workers is not None:
        env["RESTYLE_INTERACTIVE_WORKERS"] = str(args.interactive_workers)
    if args.heavy_workers is not None:
        env["RESTYLE_HEAVY_WORKERS"] = str(args.heavy_workers)
    if args.server_src is not None:  # ahead of the installed package, for the server only
        paths = [str(args.server_src.resolve()), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    return env


def git_text(folder: Path, *arguments: str) -> str | None:
    """A git command's output in `folder`; None when git fails (not a checkout, no git)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *arguments], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def server_source(env: dict[str, str], src: Path | None) -> dict[str, Any]:
    """Which Restyle the server runs: where a Python with the server's environment imports the
    `restyle` package from and, if git tracks that package, the checkout's commit and whether
    its folder has changes not committed (the JSON of a run says what was measured)."""
    found = subprocess.run(
        [sys.executable, "-c", "import restyle; print(restyle.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    package = Path(found.stdout.strip()).resolve().parent
    if src is not None and not package.is_relative_to(src.resolve()):
        raise SystemExit(f"--server-src {src}: the server would import restyle from {package}")
    # Only a tracked package has a meaningful commit: an installed copy inside an ignored venv
    # of some checkout would otherwise report that checkout's.
    tracked = git_text(package, "ls-files", "--error-unmatch", "__init__.py") is not None
    commit = git_text(package, "rev-parse", "--short", "HEAD") if tracked else None
    changes = git_text(package.parent, "status", "--porcelain", "--", ".") if tracked else None
    return {
        "server_src": None if src is None else str(src),
        "package": str(package),
        "commit": commit,
        "src_modified": None if changes is None else bool(changes),
    }


def start_server(data_dir: Path, log_path: Path, env: dict[str, str]) -> Server:
    port = free_port()
    with log_path.open("wb") as log:  # a file, not a pipe: an undrained pipe would block it
        process = subprocess.Popen(
            serve_command(port), env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return Server(process=process, url=f"http://127.0.0.1:{port}", log_path=log_path)


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def wait_ready(server: Server, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the server exited with {server.process.returncode}:\n{log_tail(server.log_path)}"
            )
        try:
            response = httpx.get(f"{server.url}/readyz", timeout=2)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready in {timeout:g} s:\n{log_tail(server.log_path)}")


def stop_server(server: Server, timeout: float) -> dict[str, Any]:
    """SIGTERM, then SIGKILL after `timeout`.

    Uvicorn re-raises the SIGTERM it caught once it has shut down, so a clean stop exits with
    -15; `graceful` says whether the log shows the shutdown completed.
    """
    process = server.process
    killed = False
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            killed = True
    graceful = "Finished server process" in log_tail(server.log_path, lines=5)
    return {"code": process.returncode, "killed": killed, "graceful": graceful}


# --- memory ------------------------------------------------------------------------------------
def status_kib(pid: int, key: str) -> int:
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM); 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc/<pid>/task/<tid>/children."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
            except OSError:
                continue
    return found


def tree_rss_mib(pid: int) -> float:
    return sum(status_kib(p, "VmRSS") for p in process_tree(pid)) / 1024


class RssSampler:
    """Samples the RSS of a process tree on a background thread; keeps the peak."""

    def __init__(self, pid: int, interval: float) -> None:
        self.pid, self.interval = pid, interval
        self.peak_mib = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            self.peak_mib = max(self.peak_mib, tree_rss_mib(self.pid))
            self.samples += 1
            if self._stop.wait(self.interval):
                return


# --- the load ----------------------------------------------------------------------------------
@dataclass
class Request:
    start: float
    end: float
    ok: bool
    error: str | None = None

    @property
    def latency(self) -> float:
        return self.end - self.start


@dataclass
class LoadConfig:
    url: str
    jpeg: bytes
    size: int
    fmt: str
    clients: int
    seconds: float
    warmup_seconds: float
    timeout: float


@dataclass
class LoadRun:
    requests: list[Request] = field(default_factory=list)
    window_start: float = 0.0
    window_end: float = 0.0
    # The window in Unix time too: the service stamps its jobs with time.time().
    window_start_unix: float = 0.0
    window_end_unix: float = 0.0
    finished: float = 0.0
    warmup_s: float = 0.0
    heavy: HeavyRun | None = None


def form_fields(config: LoadConfig) -> dict[str, str]:
    return {"style": STYLE, "method": METHOD, "size": str(config.size), "format": config.fmt}


async def post_once(client: httpx.AsyncClient, config: LoadConfig) -> Request:
    files = {"content": ("photo.jpg", config.jpeg, "image/jpeg")}
    start = time.perf_counter()
    try:
        response = await client.post("/api/stylize", data=form_fields(config), files=files)
    except Exception as exc:  # every failure is an error of the run, reported by its message
        return Request(start, time.perf_counter(), False, f"{type(exc).__name__}: {exc}")
    end = time.perf_counter()
    expected = FORMATS[config.fmt][1]
    if response.status_code != 200:
        return Request(start, end, False, f"HTTP {response.status_code}: {response.text[:200]}")
    if response.headers.get("content-type", "") != expected or not response.content:
        got = response.headers.get("content-type")
        return Request(start, end, False, f"expected {expected}, got {got!r}")
    return Request(start, end, True)


async def client_loop(
    config: LoadConfig, run: LoadRun, stop: asyncio.Event, answered: asyncio.Event
) -> None:
    timeout = httpx.Timeout(config.timeout, connect=30)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    first = True
    async with httpx.AsyncClient(base_url=config.url, timeout=timeout, limits=limits) as client:
        while not stop.is_set():
            run.requests.append(await post_once(client, config))
            if first:
                first = False
                answered.set()


async def run_load(config: LoadConfig, heavy: HeavyConfig | None = None) -> LoadRun:
    run = LoadRun()
    stop = asyncio.Event()
    streams: list[asyncio.Task[None]] = []
    if heavy is not None:
        run.heavy = HeavyRun()
        streams.append(asyncio.create_task(heavy_stream(heavy, run.heavy, stop)))
        await first_heavy_running(run.heavy, streams[0], heavy.timeout)
    answered = [asyncio.Event() for _ in range(config.clients)]
    began = time.perf_counter()
    tasks = [asyncio.create_task(client_loop(config, run, stop, a)) for a in answered]
    await asyncio.gather(*(a.wait() for a in answered))
    await asyncio.sleep(config.warmup_seconds)
    run.window_start, run.window_start_unix = time.perf_counter(), time.time()
    run.warmup_s = run.window_start - began
    await asyncio.sleep(config.seconds)
    run.window_end, run.window_end_unix = time.perf_counter(), time.time()
    stop.set()
    await asyncio.gather(*tasks, *streams)
    run.finished = time.perf_counter()
    return run


def prime(config: LoadConfig) -> float:
    """One request before the load (loads the model); checks the image; returns its latency."""
    with httpx.Client(base_url=config.url, timeout=config.timeout) as client:
        start = time.perf_counter()
        response = client.post(
            "/api/stylize",
            data=form_fields(config),
            files={"content": ("photo.jpg", config.jpeg, "image/jpeg")},
        )
        latency = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"priming request: HTTP {response.status_code}: {response.text[:300]}")
    with Image.open(io.BytesIO(response.content)) as image:
        if max(image.size) != config.size or image.format != FORMATS[config.fmt][0]:
            raise RuntimeError(f"priming request: got a {image.format} image of {image.size}")
    return latency


# --- the heavy stream (--mixed) ----------------------------------------------------------------
HEAVY_METHOD = "gatys"
# The service counts its per-client limits by the client's address: the heavy client connects
# from another loopback address than the interactive ones (all of 127/8 is the loopback on Linux).
HEAVY_ADDRESS = "127.0.0.2"
FINISHED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass
class HeavyConfig:
    url: str
    jpeg: bytes
    size: int
    in_flight: int
    poll_s: float
    timeout: float


@dataclass
class HeavyJob:
    """A gatys job as the service last described it (its times are the service's, Unix time)."""

    id: str
    token: str
    status: str = "queued"
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    progress: list[tuple[float, float]] = field(default_factory=list)  # (Unix time seen, 0..1)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def update(self, body: dict[str, Any]) -> None:
        self.status = str(body["status"])
        self.created_at = float(body["created_at"])
        self.started_at = body.get("started_at")
        self.finished_at = body.get("finished_at")
        if error := body.get("error"):
            self.error = f"{error.get('code')}: {error.get('message')}"
        self.progress.append((time.time(), float(body.get("progress") or 0.0)))

    def progress_at(self, when: float) -> float:
        """Its progress at Unix time `when`, as last seen by then (1 once it has succeeded)."""
        if self.status == "succeeded" and self.finished_at is not None and self.finished_at <= when:
            return 1.0
        value = 0.0
        for seen, progress in self.progress:
            if seen > when:
                break
            value = progress
        return value


@dataclass
class HeavyRun:
    jobs: list[HeavyJob] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # submissions and polls that failed


def heavy_form(config: HeavyConfig) -> dict[str, str]:
    # No iterations: the engine's default run, the one a user of the web page gets.
    return {"style": STYLE, "method": HEAVY_METHOD, "size": str(config.size)}


async def submit_heavy(
    client: httpx.AsyncClient, config: HeavyConfig, run: HeavyRun
) -> HeavyJob | None:
    files = {"content": ("photo.jpg", config.jpeg, "image/jpeg")}
    try:
        response = await client.post("/api/jobs", data=heavy_form(config), files=files)
    except Exception as exc:  # every failure is an error of the run, reported by its message
        run.errors.append(f"POST /api/jobs: {type(exc).__name__}: {exc}")
        return None
    if response.status_code != 202:
        run.errors.append(f"POST /api/jobs: HTTP {response.status_code}: {response.text[:200]}")
        return None
    body = response.json()
    job = HeavyJob(id=str(body["id"]), token=str(body["token"]))
    job.update(body)
    return job


async def ask_heavy(client: httpx.AsyncClient, job: HeavyJob, run: HeavyRun, verb: str) -> None:
    """GET (its status) or DELETE (cancel it) a job; either answers with the job as it is."""
    headers = {"Authorization": f"Bearer {job.token}"}
    try:
        response = await client.request(verb, f"/api/jobs/{job.id}", headers=headers)
    except Exception as exc:
        run.errors.append(f"{verb} /api/jobs/{{id}}: {type(exc).__name__}: {exc}")
        return
    if response.status_code != 200:
        text = response.text[:200]
        run.errors.append(f"{verb} /api/jobs/{{id}}: HTTP {response.status_code}: {text}")
        return
    job.update(response.json())


async def heavy_stream(config: HeavyConfig, run: HeavyRun, stop: asyncio.Event) -> None:
    """Keep `in_flight` gatys jobs queued or running until `stop`, then cancel those left."""
    transport = httpx.AsyncHTTPTransport(local_address=HEAVY_ADDRESS)
    timeout = httpx.Timeout(config.timeout, connect=30)
    active: list[HeavyJob] = []
    async with httpx.AsyncClient(
        base_url=config.url, timeout=timeout, transport=transport
    ) as client:
        while not stop.is_set():
            while len(active) < config.in_flight:
                job = await submit_heavy(client, config, run)
                if job is None:  # refused or failed: try again after a poll, not in a tight loop
                    break
                active.append(job)
                run.jobs.append(job)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), config.poll_s)
            if stop.is_set():
                break
            for job in active:
                await ask_heavy(client, job, run, "GET")
            active = [job for job in active if not job.finished]
        # The window is over. DELETE answers with the job as it is then, so one that finished
        # since the last poll keeps its own status and times.
        for job in active:
            await ask_heavy(client, job, run, "DELETE")


async def first_heavy_running(run: HeavyRun, stream: asyncio.Task[None], timeout: float) -> None:
    """Wait until the first gatys job has started; fail early if the stream cannot get one."""
    deadline = time.perf_counter() + timeout
    while not any(job.started_at is not None for job in run.jobs):
        if stream.done():
            stream.result()
            raise RuntimeError("the heavy stream ended before a job ran")
        failed = [job.error or job.status for job in run.jobs if job.finished]
        if run.errors or failed:
            raise RuntimeError(f"the heavy stream failed: {(run.errors + failed)[0]}")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"no gatys job started in {timeout:g} s")
        await asyncio.sleep(0.1)


# --- the report --------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize_load(run: LoadRun) -> dict[str, Any]:
    seconds = run.window_end - run.window_start
    window = [r for r in run.requests if run.window_start <= r.end <= run.window_end]
    ok = [r.latency for r in window if r.ok]
    errors = [r.error for r in run.requests if not r.ok and r.error]
    return {
        "window_s": seconds,
        "warmup_s": run.warmup_s,
        "drain_s": run.finished - run.window_end,
        "requests_total": len(run.requests),
        "ok_in_window": len(ok),
        "images_per_s": len(ok) / seconds,
        "latency_p50_s": percentile(ok, 50),
        "latency_p95_s": percentile(ok, 95),
        "latency_max_s": max(ok) if ok else None,
        "latency_mean_s": statistics.fmean(ok) if ok else None,
        "errors_in_window": sum(1 for r in window if not r.ok),
        "errors_total": sum(1 for r in run.requests if not r.ok),
        "error_messages": list(dict.fromkeys(errors))[:MAX_ERROR_MESSAGES],
    }


def running_seconds(jobs: list[HeavyJob], start: float, end: float) -> float:
    """How long inside [start, end] at least one of the jobs was running (their union)."""
    spans = sorted(
        (max(job.started_at, start), min(job.finished_at or end, end))
        for job in jobs
        if job.started_at is not None
    )
    total, reached = 0.0, start
    for low, high in spans:
        low = max(low, reached)
        if high > low:
            total += high - low
            reached = high
    return total


def summarize_heavy(heavy: HeavyRun, run: LoadRun) -> dict[str, Any]:
    start, end = run.window_start_unix, run.window_end_unix
    minutes = (end - start) / 60
    jobs = heavy.jobs

    def ended_inside(job: HeavyJob, status: str) -> bool:
        ended = job.finished_at
        return job.status == status and ended is not None and start <= ended <= end

    # (created, started, finished) of the jobs that succeeded inside the window
    done = [
        (job.created_at, job.started_at, job.finished_at)
        for job in jobs
        if ended_inside(job, "succeeded")
        and job.started_at is not None
        and job.finished_at is not None
    ]
    runs = [finished - started for _, started, finished in done]
    waits = [started - created for created, started, _ in done]
    work = sum(job.progress_at(end) - job.progress_at(start) for job in jobs)
    failures = [
        f"job {job.id}: {job.error or job.status}" for job in jobs if job.status == "failed"
    ]
    return {
        "jobs_submitted": len(jobs),
        "succeeded_in_window": len(done),
        "jobs_per_minute": len(done) / minutes,
        "run_median_s": statistics.median(runs) if runs else None,
        "wait_median_s": statistics.median(waits) if waits else None,
        "work_in_window_jobs": work,
        "work_per_minute_jobs": work / minutes,
        "running_fraction": running_seconds(jobs, start, end) / (end - start),
        "failed_in_window": sum(1 for job in jobs if ended_inside(job, "failed")),
        "failed_total": len(failures),
        "cancelled_at_end": sum(1 for job in jobs if job.status == "cancelled"),
        "request_errors": len(heavy.errors),
        "error_messages": list(dict.fromkeys(failures + heavy.errors))[:MAX_ERROR_MESSAGES],
        # Every job, its times in seconds from the window's start (negative: before it).
        "jobs": [
            {
                "id": job.id,
                "status": job.status,
                **{
                    name: None if value is None else round(value - start, 3)
                    for name, value in (
                        ("created", job.created_at),
                        ("started", job.started_at),
                        ("finished", job.finished_at),
                    )
                },
                "progress_at_end": job.progress_at(end),
            }
            for job in jobs
        ],
    }


def version_of(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "restyle": version_of("restyle"),
        "httpx": version_of("httpx"),
        "loadavg_1_5_15": list(os.getloadavg()),
    }


def seconds_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def exit_text(server_exit: dict[str, Any]) -> str:
    how = "killed" if server_exit["killed"] else "graceful" if server_exit["graceful"] else "?"
    return f"{server_exit['code']} ({how})"


def source_text(source: dict[str, Any]) -> str:
    where = source["server_src"] or f"installed ({source['package']})"
    commit = source["commit"] or "no git commit"
    changed = ", with changes not committed" if source["src_modified"] else ""
    return f"{where}, {commit}{changed}"


def load_text(values: list[float]) -> str:
    return " ".join(f"{value:.2f}" for value in values)


def heavy_rows(config: dict[str, Any], heavy: dict[str, Any]) -> list[tuple[str, str]]:
    per_minute = f"{heavy['jobs_per_minute']:.2f} jobs/min"
    work = f"{heavy['work_in_window_jobs']:.2f} jobs ({heavy['work_per_minute_jobs']:.2f}/min)"
    return [
        (
            "heavy stream",
            f"{config['heavy_in_flight']} {HEAVY_METHOD} jobs in flight, "
            f"{config['heavy_size']}x{config['heavy_size']}, from {HEAVY_ADDRESS}",
        ),
        ("heavy succeeded in window", f"{heavy['succeeded_in_window']} ({per_minute})"),
        ("heavy run time median", seconds_text(heavy["run_median_s"])),
        ("heavy wait median", seconds_text(heavy["wait_median_s"])),
        ("heavy work in window", work),
        ("heavy running", f"{heavy['running_fraction']:.0%} of the window"),
        (
            "heavy submitted / failed / cancelled",
            f"{heavy['jobs_submitted']} / {heavy['failed_total']} / {heavy['cancelled_at_end']}",
        ),
    ]


def print_table(results: dict[str, Any]) -> None:
    config, raw, service = results["config"], results["raw"], results["service"]
    memory = results["server_memory"]
    ratio = results["service_over_raw"]
    mixed = results.get("mixed")
    rows = [
        ("server source", source_text(results["server_source"])),
        ("raw engine (this process)", f"{raw['images_per_s']:.3f} images/s"),
        (
            "  images / seconds / median",
            f"{raw['images']} / {raw['seconds']:.1f} s / {raw['median_s']:.3f} s per image",
        ),
        ("service throughput", f"{service['images_per_s']:.3f} images/s"),
        ("  ok in window / window", f"{service['ok_in_window']} / {service['window_s']:.1f} s"),
        ("service / raw", "n/a" if ratio is None else f"{ratio:.3f}"),
        ("latency p50", seconds_text(service["latency_p50_s"])),
        ("latency p95", seconds_text(service["latency_p95_s"])),
        ("latency max", seconds_text(service["latency_max_s"])),
        ("errors (window / total)", f"{service['errors_in_window']} / {service['errors_total']}"),
        *(heavy_rows(config, mixed["heavy"]) if mixed else []),
        ("cold first request", seconds_text(service["cold_request_s"])),
        ("warm-up / drain", f"{service['warmup_s']:.1f} s / {service['drain_s']:.1f} s"),
        ("server RSS before load", f"{memory['rss_before_load_mib']:.0f} MiB"),
        ("server RSS after priming", f"{memory['rss_after_priming_mib']:.0f} MiB"),
        ("server RSS peak", f"{memory['rss_peak_mib']:.0f} MiB ({memory['samples']} samples)"),
        ("server VmHWM", f"{memory['vmhwm_mib']:.0f} MiB"),
        ("server exit", exit_text(results["server_exit"])),
        (
            "load average before / after",
            f"{load_text(results['machine']['loadavg_1_5_15'])} / "
            f"{load_text(results['loadavg_after_1_5_15'])}",
        ),
    ]
    workers = (
        f"workers: interactive {config['interactive_workers'] or 'default'}, "
        f"heavy {config['heavy_workers'] or 'default'}"
    )
    title = (
        f"restyle serve under {'mixed ' if mixed else ''}load: {config['clients']} clients, "
        f"{config['seconds']:g} s, {METHOD} {STYLE} {config['size']}x{config['size']} -> "
        f"{config['format']} ({results['server_mode']} mode, {workers})"
    )
    print(f"\n{title}\n{'-' * len(title)}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    for message in service["error_messages"]:
        print(f"error: {message}")
    for message in mixed["heavy"]["error_messages"] if mixed else []:
        print(f"heavy error: {message}")


# --- the benchmark -----------------------------------------------------------------------------
def measure_service(args: argparse.Namespace, jpeg: bytes, scratch: Path) -> dict[str, Any]:
    env = server_env(args, scratch / "data")
    results: dict[str, Any] = {"server_source": server_source(env, args.server_src)}
    server = start_server(scratch / "data", scratch / "server.log", env)
    results["server_log"] = str(server.log_path)
    try:
        results["server_mode"] = wait_ready(server, args.ready_timeout).get("mode")
        pid = server.process.pid
        memory: dict[str, Any] = {"rss_before_load_mib": tree_rss_mib(pid)}
        config = LoadConfig(
            url=server.url,
            jpeg=jpeg,
            size=args.size,
            fmt=args.format,
            clients=args.clients,
            seconds=args.seconds,
            warmup_seconds=args.warmup_seconds,
            timeout=args.timeout,
        )
        heavy = None
        if args.mixed:
            photo = args.photo or default_photo()
            heavy = HeavyConfig(
                url=server.url,
                jpeg=jpeg if args.heavy_size == args.size else square_jpeg(photo, args.heavy_size),
                size=args.heavy_size,
                in_flight=args.heavy_in_flight,
                poll_s=args.heavy_poll,
                timeout=args.timeout,
            )
        print(f"server ready at {server.url}; priming request ...", flush=True)
        with RssSampler(pid, args.rss_interval) as sampler:
            cold = prime(config)
            memory["rss_after_priming_mib"] = tree_rss_mib(pid)
            if heavy is not None:
                print(
                    f"heavy stream: {heavy.in_flight} {HEAVY_METHOD} jobs in flight at "
                    f"{heavy.size} px; waiting for the first to run ...",
                    flush=True,
                )
            print(f"load: {args.clients} clients, warm-up then {args.seconds:g} s ...", flush=True)
            run = asyncio.run(run_load(config, heavy))
        memory |= {
            "rss_peak_mib": sampler.peak_mib,
            "samples": sampler.samples,
            "vmhwm_mib": status_kib(pid, "VmHWM") / 1024,
        }
        results["service"] = {**summarize_load(run), "cold_request_s": cold}
        if run.heavy is not None:
            results["mixed"] = {"heavy": summarize_heavy(run.heavy, run)}
        results["server_memory"] = memory
    finally:
        results["server_exit"] = stop_server(server, args.stop_timeout)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Throughput, latency and memory of `restyle serve` (POST /api/stylize) "
        "under concurrent load, against the raw engine in one process.",
    )
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--seconds", type=float, default=60, help="measured window (60)")
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=5,
        help="after every client's first answer, wait this long before measuring (5)",
    )
    parser.add_argument("--raw-seconds", type=float, default=20, help="raw engine timing (20)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="png", help="output (png)")
    parser.add_argument("--size", type=int, default=512, help="photo side and output size (512)")
    parser.add_argument("--photo", type=Path, default=None, help="photo (bundled 'parrots')")
    parser.add_argument(
        "--interactive-workers",
        type=int,
        default=None,
        help="RESTYLE_INTERACTIVE_WORKERS (unset: inherited, else the server's default)",
    )
    parser.add_argument(
        "--heavy-workers",
        type=int,
        default=None,
        help="RESTYLE_HEAVY_WORKERS (unset: inherited, else the server's default)",
    )
    parser.add_argument(
        "--server-src",
        type=Path,
        default=None,
        help="run the server from this `src` folder of another checkout (PYTHONPATH)",
    )
    parser.add_argument(
        "--mixed", action="store_true", help="add a stream of gatys jobs beside the clients"
    )
    parser.add_argument(
        "--heavy-in-flight", type=int, default=2, help="--mixed: gatys jobs queued or running (2)"
    )
    parser.add_argument(
        "--heavy-size", type=int, default=512, help="--mixed: the gatys jobs' size (512)"
    )
    parser.add_argument(
        "--heavy-poll", type=float, default=0.5, help="--mixed: job status polling (0.5 s)"
    )
    parser.add_argument("--timeout", type=float, default=300, help="per-request timeout (300 s)")
    parser.add_argument("--rss-interval", type=float, default=0.5, help="RSS sampling (0.5 s)")
    parser.add_argument("--ready-timeout", type=float, default=120, help="wait for /readyz (120)")
    parser.add_argument("--stop-timeout", type=float, default=30, help="SIGTERM to SIGKILL (30)")
    parser.add_argument("--keep-data", action="store_true", help="keep the data dir and log")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    args = parser.parse_args(argv)
    positive = ("clients", "seconds", "raw_seconds", "size", "rss_interval")
    for name in (*positive, "heavy_in_flight", "heavy_size", "heavy_poll"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    for name in ("interactive_workers", "heavy_workers"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.server_src is not None and not (args.server_src / "restyle" / "__init__.py").is_file():
        parser.error(f"--server-src {args.server_src}: no restyle package in it")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    photo = args.photo or default_photo()
    jpeg = square_jpeg(photo, args.size)
    machine = machine_info()
    print(f"raw engine: {args.raw_seconds:g} s of {METHOD} {STYLE} at {args.size} ...", flush=True)
    raw = measure_raw(jpeg, args.size, args.format, args.raw_seconds)
    scratch = Path(tempfile.mkdtemp(prefix="restyle-load-"))
    try:
        service = measure_service(args, jpeg, scratch)
    finally:
        if not args.keep_data:
            shutil.rmtree(scratch, ignore_errors=True)
    config = {
        **{k: v for k, v in vars(args).items() if k not in ("photo", "json", "server_src")},
        "server_src": None if args.server_src is None else str(args.server_src),
        "photo": str(photo),
        "jpeg_bytes": len(jpeg),
        "style": STYLE,
        "method": METHOD,
    }
    ratio = service["service"]["images_per_s"] / raw.images_per_s if raw.images_per_s else None
    results = {
        "machine": machine,
        "config": config,
        "raw": asdict(raw),
        **service,
        "service_over_raw": ratio,
        "loadavg_after_1_5_15": list(os.getloadavg()),
    }
    print_table(results)
    if args.keep_data:
        print(f"server data and log kept in {scratch}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    heavy = service.get("mixed", {}).get("heavy", {})
    failed = heavy.get("failed_total", 0) + heavy.get("request_errors", 0)
    return 1 if service["service"]["errors_total"] or failed else 0


if __name__ == "__main__":
    sys.exit(main())
