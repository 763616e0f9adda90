"""Real processes for the service tests: redis-server, `restyle serve`, `restyle worker`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class RedisServer:
    """A redis-server with append-only persistence in `folder`, restartable on the same port."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make test installs it)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.folder),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self, *, kill: bool = False) -> None:
        if self.process is not None:
            _stop(self.process, kill=kill)


def _restyle_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "restyle", *args]


def _env(settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTYLE_")}
    env.update({f"RESTYLE_{k.upper()}": v for k, v in settings.items()})
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "2")
    return env


@dataclass
class Service:
    """`restyle serve` on a loopback port, with RESTYLE_* settings."""

    data_dir: Path
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Service:
        self.log = self.data_dir / f"serve-{self.port}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                _restyle_command("serve", "--port", str(self.port)),
                env=_env({"data_dir": str(self.data_dir), **self.settings}),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"restyle serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("restyle serve did not become ready")

    def stop(self, *, kill: bool = False) -> None:
        if self.process is not None:
            _stop(self.process, kill=kill)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)


@dataclass
class Worker:
    """`restyle worker` against a Redis URL."""

    redis_url: str
    folder: Path
    settings: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        log = self.folder / f"worker-{time.monotonic_ns()}.log"
        with log.open("ab") as handle:
            self.process = subprocess.Popen(
                _restyle_command("worker", "--redis", self.redis_url),
                env=_env({"redis_url": self.redis_url, **self.settings}),
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        return self

    def stop(self, *, kill: bool = False) -> None:
        if self.process is not None:
            _stop(self.process, kill=kill)
