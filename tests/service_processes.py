"""Real processes for the service tests: redis-server, `restyle serve`, `restyle worker`, and a
TCP proxy that loses a reply on the way back from Redis."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
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


class LossyProxy:
    """A TCP proxy in front of redis-server that loses one reply on request: the command that
    contains the marker reaches Redis and runs, then the client's connection is closed before
    the answer comes back, as when Redis dies right after a write. The client library retries
    the command on a new connection, which the proxy serves as usual."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.lost = 0
        self._marker: bytes | None = None
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def lose_reply_to(self, marker: bytes) -> None:
        with self._lock:
            self._marker = marker

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(("127.0.0.1", self.redis_port))
            cut = threading.Event()
            threading.Thread(target=self._requests, args=(client, server, cut), daemon=True).start()
            threading.Thread(target=self._replies, args=(server, client, cut), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket, cut: threading.Event) -> None:
        while data := _receive(client):
            with self._lock:
                hit = self._marker is not None and self._marker in data
                if hit:
                    self._marker = None
            if hit:
                self.lost += 1
                cut.set()  # before the command goes: its reply must not be relayed
            try:
                server.sendall(data)
            except OSError:
                break
            if hit:
                time.sleep(0.3)  # Redis runs it
                break
        _close(client, server)

    def _replies(self, server: socket.socket, client: socket.socket, cut: threading.Event) -> None:
        while (data := _receive(server)) and not cut.is_set():
            try:
                client.sendall(data)
            except OSError:
                break
        _close(client, server)


def _receive(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):  # the other side may have closed it
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


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
    lanes: str = "interactive,heavy"

    def start(self) -> Worker:
        log = self.folder / f"worker-{time.monotonic_ns()}.log"
        with log.open("ab") as handle:
            self.process = subprocess.Popen(
                _restyle_command("worker", "--redis", self.redis_url, "--lanes", self.lanes),
                env=_env({"redis_url": self.redis_url, **self.settings}),
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        return self

    def stop(self, *, kill: bool = False) -> None:
        if self.process is not None:
            _stop(self.process, kill=kill)
