"""The scale-out mode: the API on a real redis-server, `restyle worker` processes pulling jobs.

Covers a worker killed mid-job (the job is retried on another worker), a Redis restart with
queued jobs (append-only persistence keeps them) and synchronous requests served by a worker.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from tests.service_processes import RedisServer, Service, Worker
from tests.test_service import auth, jpeg, submit, wait

pytestmark = pytest.mark.timeout(600)

FAST_SWEEP = {"heartbeat_s": "0.5", "heartbeat_timeout_s": "4", "cleanup_interval_s": "1"}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("api")
    server = Service(folder, {"redis_url": redis_server.url, **FAST_SWEEP}).start()
    yield server
    server.stop()


@pytest.fixture()
def workers(redis_server: RedisServer, tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def start_worker(workers: list[Worker], redis_server: RedisServer, folder: Path) -> Worker:
    worker = Worker(redis_server.url, folder, FAST_SWEEP).start()
    workers.append(worker)
    return worker


def status(client: httpx.Client, job: dict) -> dict:
    return client.get(f"/api/jobs/{job['id']}", headers=auth(job)).json()


def test_readiness_reports_the_redis_mode(service: Service) -> None:
    with service.client() as client:
        assert client.get("/readyz").json() == {"ready": True, "mode": "redis"}


def test_a_worker_runs_queued_and_synchronous_jobs(
    service: Service, redis_server: RedisServer, workers: list[Worker], tmp_path: Path
) -> None:
    with service.client() as client:
        job = submit(client, size="96")
        time.sleep(0.5)
        assert status(client, job)["status"] == "queued"  # nothing runs without a worker
        start_worker(workers, redis_server, tmp_path)
        assert wait(client, job)["status"] == "succeeded"
        result = client.get(job["urls"]["result"], headers=auth(job))
        assert max(Image.open(io.BytesIO(result.content)).size) == 96
        files = {"content": ("photo.jpg", jpeg(), "image/jpeg")}
        data = {"style": "great-wave", "size": "64"}
        now = client.post("/api/stylize", files=files, data=data)
        assert now.status_code == 200 and now.headers["content-type"] == "image/png"


def test_a_worker_killed_mid_job_is_replaced_and_the_job_retried(
    service: Service, redis_server: RedisServer, workers: list[Worker], tmp_path: Path
) -> None:
    with service.client() as client:
        job = submit(client, method="gatys", size="96", iterations="120")
        doomed = start_worker(workers, redis_server, tmp_path)
        deadline = time.monotonic() + 120
        while status(client, job)["status"] != "running":
            assert time.monotonic() < deadline, status(client, job)
            time.sleep(0.1)
        doomed.stop(kill=True)  # SIGKILL: no chance to report anything
        start_worker(workers, redis_server, tmp_path)
        final = wait(client, job, timeout=300)
        assert final["status"] == "succeeded", final
        assert final["attempts"] == 2


def test_queued_jobs_survive_a_redis_restart(
    service: Service, redis_server: RedisServer, workers: list[Worker], tmp_path: Path
) -> None:
    with service.client() as client:
        jobs = [submit(client, size="64") for _ in range(3)]
        redis_server.stop(kill=True)  # append-only file, fsync always: nothing acknowledged is lost
        assert client.get("/readyz").status_code == 503
        redis_server.start()
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert all(status(client, job)["status"] == "queued" for job in jobs)
        start_worker(workers, redis_server, tmp_path)
        assert [wait(client, job)["status"] for job in jobs] == ["succeeded"] * 3
        # A worker that lives through a Redis restart reconnects and takes new jobs.
        redis_server.stop(kill=True)
        time.sleep(1)
        redis_server.start()
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert wait(client, submit(client, size="64"), timeout=120)["status"] == "succeeded"
