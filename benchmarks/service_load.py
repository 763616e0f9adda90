"""Load test of `restyle serve`: throughput, latency and memory of POST /api/stylize under load.

What is measured, on one machine:

1. The raw engine, as the reference: `restyle.api.stylize(jpeg_bytes, STYLE, method="fast",
   size=SIZE)` called in a loop in this process, each call followed by encoding the output in
   the format the service returns (PNG by default, `--format`; `restyle.imaging.encode_image`,
   as the service encodes them), so decoding the upload and encoding the result are counted on both
   sides. Two untimed warm-up calls, then as many calls as fit in `--raw-seconds`; images/s.
2. The service: `restyle serve` is started as a subprocess on a free loopback port with a fresh
   temporary RESTYLE_DATA_DIR (other RESTYLE_* variables are inherited; `--workers` sets
   RESTYLE_WORKERS; RESTYLE_MAX_JOBS_PER_CLIENT is raised to `--clients` unless set, since all
   clients share one loopback address and the per-client limit counts /api/stylize). After
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

The input is a real photo center-cropped and resized to SIZE x SIZE and encoded once as JPEG
(quality 95): the bundled `parrots` example unless `--photo`. The clients run in this process,
on the same CPUs as the server: on a small machine they take a share of them, and the ratio
service/raw includes that cost. The raw engine is measured before the server starts, so the two
never compete. Nothing else on the machine is paused: run it on a quiet machine.

Usage (from the repository root, with Restyle and httpx installed, e.g. in .venv):

    python benchmarks/service_load.py                       # 32 clients, 60 s, 20 s raw
    python benchmarks/service_load.py --clients 4 --seconds 10 --raw-seconds 5   # smoke run
    python benchmarks/service_load.py --format jpeg --workers 2 --json load.json
"""

from __future__ import annotations

import argparse
import asyncio
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


def start_server(data_dir: Path, log_path: Path, workers: int | None, clients: int) -> Server:
    port = free_port()
    env = {**os.environ, "RESTYLE_DATA_DIR": str(data_dir)}
    env.setdefault("RESTYLE_MAX_JOBS_PER_CLIENT", str(max(clients, 4)))
    if workers is not None:
        env["RESTYLE_WORKERS"] = str(workers)
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
    finished: float = 0.0
    warmup_s: float = 0.0


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


async def run_load(config: LoadConfig) -> LoadRun:
    run = LoadRun()
    stop = asyncio.Event()
    answered = [asyncio.Event() for _ in range(config.clients)]
    began = time.perf_counter()
    tasks = [asyncio.create_task(client_loop(config, run, stop, a)) for a in answered]
    await asyncio.gather(*(a.wait() for a in answered))
    await asyncio.sleep(config.warmup_seconds)
    run.window_start = time.perf_counter()
    run.warmup_s = run.window_start - began
    await asyncio.sleep(config.seconds)
    run.window_end = time.perf_counter()
    stop.set()
    await asyncio.gather(*tasks)
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


def print_table(results: dict[str, Any]) -> None:
    config, raw, service = results["config"], results["raw"], results["service"]
    memory = results["server_memory"]
    ratio = results["service_over_raw"]
    rows = [
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
        ("cold first request", seconds_text(service["cold_request_s"])),
        ("warm-up / drain", f"{service['warmup_s']:.1f} s / {service['drain_s']:.1f} s"),
        ("server RSS before load", f"{memory['rss_before_load_mib']:.0f} MiB"),
        ("server RSS after priming", f"{memory['rss_after_priming_mib']:.0f} MiB"),
        ("server RSS peak", f"{memory['rss_peak_mib']:.0f} MiB ({memory['samples']} samples)"),
        ("server VmHWM", f"{memory['vmhwm_mib']:.0f} MiB"),
        ("server exit", exit_text(results["server_exit"])),
    ]
    title = (
        f"restyle serve under load: {config['clients']} clients, {config['seconds']:g} s, "
        f"{METHOD} {STYLE} {config['size']}x{config['size']} -> {config['format']} "
        f"({results['server_mode']} mode, workers {config['workers'] or 'default'})"
    )
    print(f"\n{title}\n{'-' * len(title)}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    for message in service["error_messages"]:
        print(f"error: {message}")


# --- the benchmark -----------------------------------------------------------------------------
def measure_service(args: argparse.Namespace, jpeg: bytes, scratch: Path) -> dict[str, Any]:
    server = start_server(scratch / "data", scratch / "server.log", args.workers, args.clients)
    results: dict[str, Any] = {"server_log": str(server.log_path)}
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
        print(f"server ready at {server.url}; priming request ...", flush=True)
        with RssSampler(pid, args.rss_interval) as sampler:
            cold = prime(config)
            memory["rss_after_priming_mib"] = tree_rss_mib(pid)
            print(f"load: {args.clients} clients, warm-up then {args.seconds:g} s ...", flush=True)
            run = asyncio.run(run_load(config))
        memory |= {
            "rss_peak_mib": sampler.peak_mib,
            "samples": sampler.samples,
            "vmhwm_mib": status_kib(pid, "VmHWM") / 1024,
        }
        results["service"] = {**summarize_load(run), "cold_request_s": cold}
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
    parser.add_argument("--workers", type=int, default=None, help="RESTYLE_WORKERS (inherited)")
    parser.add_argument("--timeout", type=float, default=300, help="per-request timeout (300 s)")
    parser.add_argument("--rss-interval", type=float, default=0.5, help="RSS sampling (0.5 s)")
    parser.add_argument("--ready-timeout", type=float, default=120, help="wait for /readyz (120)")
    parser.add_argument("--stop-timeout", type=float, default=30, help="SIGTERM to SIGKILL (30)")
    parser.add_argument("--keep-data", action="store_true", help="keep the data dir and log")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    args = parser.parse_args(argv)
    for name in ("clients", "seconds", "raw_seconds", "size", "rss_interval"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
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
        **{k: v for k, v in vars(args).items() if k not in ("photo", "json")},
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
    return 1 if service["service"]["errors_total"] else 0


if __name__ == "__main__":
    sys.exit(main())
