"""The scale-out mode: the API on a real redis-server, `restyle worker` processes pulling jobs.

Covers a worker killed mid-job (the job is retried on another worker), a Redis restart with
queued jobs (append-only persistence keeps them) or with busy workers (they ride it out), a job
whose queue entry was lost (queued again), the per-client limit under concurrent requests, and
synchronous requests served by a worker.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest
import redis
from PIL import Image
from rq import Queue
from tests.service_processes import LossyProxy, RedisServer, Service, Worker
from tests.test_service import auth, jpeg, submit, wait
from tests.test_service_hostile import burst, outcomes
from tests.video_clips import make_clip

pytestmark = pytest.mark.timeout(600)

FAST_SWEEP = {
    "heartbeat_s": "0.5",
    "heartbeat_timeout_s": "4",
    "cleanup_interval_s": "1",
    "requeue_grace_s": "2",
}


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
    settings = {"redis_url": redis_server.url, "max_jobs_per_client": "20", **FAST_SWEEP}
    server = Service(folder, settings).start()
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


def wait_ready(client: httpx.Client, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the API did not see Redis again"
        time.sleep(0.2)


def wait_for_workers(
    redis_server: RedisServer, pair: list[Worker], *, timeout: float, busy: bool
) -> bool:
    """Whether RQ lists every worker of `pair` (one snapshot each poll), busy if asked."""
    from rq import Worker as RQWorker

    pids = {worker.process.pid for worker in pair if worker.process is not None}
    broker = redis.Redis.from_url(redis_server.url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            listed = [w for w in RQWorker.all(connection=broker) if w.pid in pids]
            if len(listed) == len(pids) and all(
                not busy or w.get_state() == "busy" for w in listed
            ):
                return True
            time.sleep(0.02)
        return False
    finally:
        broker.close()


def test_busy_workers_ride_out_a_redis_restart(
    service: Service, redis_server: RedisServer, workers: list[Worker], tmp_path: Path
) -> None:
    pair = [start_worker(workers, redis_server, tmp_path) for _ in range(2)]
    # Both workers must be serving before the jobs go in: one that starts while the other has
    # already run the whole batch would never be caught mid-job.
    assert wait_for_workers(redis_server, pair, timeout=120, busy=False)
    with service.client() as client:
        jobs = [submit(client, size="256") for _ in range(20)]
        assert wait_for_workers(redis_server, pair, timeout=60, busy=True), "not both busy"
        redis_server.stop(kill=True)  # both workers are mid-job
        time.sleep(3)  # longer than a client library's own few quick retries
        redis_server.start()
        wait_ready(client)
        finals = [wait(client, job, timeout=120)["status"] for job in jobs]
    assert finals == ["succeeded"] * 20
    assert [worker.process.poll() for worker in pair] == [None, None]  # both still serving


def test_a_queued_job_whose_queue_entry_was_lost_is_queued_again(
    service: Service, redis_server: RedisServer, workers: list[Worker], tmp_path: Path
) -> None:
    with service.client() as client:
        lost_ticket, lost_place = submit(client, size="64"), submit(client, size="64")
        assert lost_ticket["lane"] == "interactive"
        broker = redis.Redis.from_url(redis_server.url)
        queue = Queue("restyle-interactive", connection=broker)
        # As if workers had taken both jobs' tickets and died: the sweeper writes new ones.
        assert broker.delete(queue.key) == 1
        # As if a worker had also taken the second job off its lane and died before claiming
        # it: the job is queued again.
        assert broker.zrem("restyle:lane:interactive", lost_place["id"]) == 1
        broker.close()
        start_worker(workers, redis_server, tmp_path)
        finals = [wait(client, job, timeout=60) for job in (lost_ticket, lost_place)]
    assert [(f["status"], f["attempts"]) for f in finals] == [("succeeded", 1)] * 2


def test_concurrent_requests_cannot_pass_the_per_client_limit(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    limits = {"redis_url": redis_server.url, "max_jobs_per_client": "4", "sync_timeout_s": "3"}
    api = Service(tmp_path / "api", limits).start()  # no worker: admitted jobs stay queued
    try:
        results = outcomes(burst(api.url, source="127.0.0.5"), rejections=12)
        with api.client() as client:  # the admitted asynchronous jobs are not wanted
            for job in (r.json() for r in results if r.status_code == 202):
                client.delete(f"/api/jobs/{job['id']}", headers=auth(job))
    finally:
        api.stop()
    admitted = [r.status_code for r in results if r.status_code != 429]
    assert len(admitted) == 4, [r.status_code for r in results]
    # An admitted synchronous request waited for a worker in vain: 503 timeout.
    assert set(admitted) <= {202, 503}


def test_uploads_of_a_refused_or_half_done_submission_do_not_outlive_it(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    from restyle.service.jobs import JobOptions, JobRecord, new_job_id
    from restyle.service.settings import ServiceSettings
    from restyle.service.stores.base import JobRefused
    from restyle.service.stores.redis_backend import RedisBackend
    from restyle.service.stores.redis_jobs import PENDING_BLOB_TTL_S

    backend = RedisBackend(ServiceSettings(data_dir=tmp_path, redis_url=redis_server.url))
    client = f"ttl-{new_job_id()}"

    def record() -> JobRecord:
        return JobRecord(id=new_job_id(), token_sha256="", client=client, options=JobOptions())

    admitted, refused = record(), record()
    try:
        backend.jobs.submit(admitted, {"content": b"photo"}, max_per_client=1)
        with pytest.raises(JobRefused):
            backend.jobs.submit(refused, {"content": b"photo", "style": b"x"}, max_per_client=1)
        keys = backend.redis.keys(f"restyle:blob:{refused.id}:*")
        assert keys == []
        assert backend.redis.ttl(f"restyle:blob:{admitted.id}:content") > PENDING_BLOB_TTL_S
        # A submission that dies between its files and its record (here: its admission script
        # never runs) leaves files that expire within PENDING_BLOB_TTL_S.
        half_done = record()

        def redis_gone(**_: object) -> None:
            raise redis.ConnectionError("gone")

        backend.jobs._admit = redis_gone  # type: ignore[assignment]
        with pytest.raises(redis.ConnectionError):
            backend.jobs.submit(half_done, {"content": b"photo"})
        assert 0 < backend.redis.ttl(f"restyle:blob:{half_done.id}:content") <= PENDING_BLOB_TTL_S
        backend.redis.delete(f"restyle:blob:{half_done.id}:content")
    finally:
        backend.jobs.delete(admitted.id)
        backend.stop()


def test_commands_whose_reply_was_lost_leave_consistent_jobs(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis ran a command but its reply was lost (Redis died right after, the network
    dropped): the client retries it, and the second run must answer as the first would have.
    A claim retried this way used to answer no, leaving a job that said running, that no
    worker ran and that no sweep saw: it never finished."""
    from restyle.service.jobs import JobOptions, JobRecord, JobStatus, new_job_id
    from restyle.service.settings import ServiceSettings
    from restyle.service.stores.base import JobRefused
    from restyle.service.stores.redis_backend import RedisBackend
    from restyle.service.sweeper import sweep

    proxy = LossyProxy(redis_server.port)
    settings = ServiceSettings(
        data_dir=tmp_path, redis_url=proxy.url(db=3), heartbeat_timeout_s=5, max_attempts=3
    )
    backend = RedisBackend(settings)
    backend.redis.flushdb()  # a database of its own: the sweep below sees only these jobs

    def submitted(**limits: int) -> JobRecord:
        record = JobRecord(id=new_job_id(), token_sha256="", client="c", options=JobOptions())
        backend.jobs.submit(record, {"content": b"photo"}, **limits)
        return record

    try:
        first, second = submitted(), submitted()
        assert backend.jobs.claim(first.id, time.time()) is not None  # Redis now holds the scripts
        proxy.lose_reply_to(b'"lost-claim"')
        claimed = backend.jobs.claim(second.id, time.time(), claimant="lost-claim")
        assert proxy.lost == 1
        assert claimed is not None and claimed.status == JobStatus.RUNNING
        assert claimed.attempts == 1  # claimed once, answered yes twice
        assert backend.jobs.claim(second.id, time.time()) is None  # nobody else runs it
        assert {r.id for r in backend.jobs.running()} == {first.id, second.id}
        # Workers that died after such claims: the sweeper sees both and queues them again.
        assert sweep(backend, settings, now=time.time() + 10)["retried"] == 2
        assert {(r.id, r.status) for r in backend.jobs.queued(10)} == {
            (first.id, JobStatus.QUEUED), (second.id, JobStatus.QUEUED)
        }  # fmt: skip

        # A finish whose reply was lost: finished, out of the running and client sets.
        backend.jobs.claim(second.id, time.time())
        proxy.lose_reply_to(b'"succeeded"')
        done = backend.jobs.update(second.id, status=JobStatus.SUCCEEDED, finished_at=time.time())
        assert proxy.lost == 2 and done is not None and done.status == JobStatus.SUCCEEDED
        assert second.id not in {r.id for r in backend.jobs.running()}
        assert backend.jobs.finished_before(time.time() + 1) == [second.id]
        assert backend.stats.active_count("c") == 1  # `first`, still queued

        # An admission whose reply was lost, at the client's last free slot: admitted once.
        proxy.lose_reply_to(b"restyle:active:heavy:c")
        third = submitted(max_per_client=2)
        assert proxy.lost == 3 and backend.stats.active_count("c") == 2
        assert backend.jobs.get(third.id) is not None
        with pytest.raises(JobRefused):
            submitted(max_per_client=2)
    finally:
        backend.redis.flushdb()
        backend.stop()
        proxy.close()


def test_a_worker_process_runs_a_video_job(
    service: Service, redis_server: RedisServer, workers: list[Worker], tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=12, noise=4.0)
    with service.client() as client:
        files = {"content": ("clip", clip.read_bytes(), "application/octet-stream")}
        response = client.post("/api/jobs", files=files, data={"style": "starry-night"})
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["kind"] == "video" and job["frames"] == {"done": 0, "total": 12}
        start_worker(workers, redis_server, tmp_path)
        final = wait(client, job)
        assert final["status"] == "succeeded", final
        assert final["frames"] == {"done": 12, "total": 12}
        whole = client.get(job["urls"]["result"], headers=auth(job))
        assert whole.headers["content-type"] == "video/mp4"
        with av.open(io.BytesIO(whole.content)) as result:
            assert sum(1 for _ in result.decode(video=0)) == 12
        # Redis holds the result as bytes: the API answers ranges from them.
        part = client.get(job["urls"]["result"], headers={**auth(job), "Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == whole.content[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{len(whole.content)}"
        preview = client.get(job["urls"]["preview"], headers=auth(job))
        assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"


@pytest.mark.slow  # two worker start-ups and a heartbeat timeout: about 20 s on 2 cores
def test_a_worker_killed_mid_video_is_replaced_and_the_clip_run_again(
    service: Service, redis_server: RedisServer, workers: list[Worker], tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=150, audio=False, width=128, height=96)
    with service.client() as client:
        files = {"content": ("clip.mp4", clip.read_bytes(), "video/mp4")}
        job = client.post("/api/jobs", files=files, data={"style": "starry-night"}).json()
        doomed = start_worker(workers, redis_server, tmp_path)
        deadline = time.monotonic() + 120
        while not (current := status(client, job))["frames"]["done"]:
            assert time.monotonic() < deadline and current["status"] != "failed", current
            time.sleep(0.05)
        doomed.stop(kill=True)  # mid-clip: its heartbeats stop
        start_worker(workers, redis_server, tmp_path)
        final = wait(client, job, timeout=120)
        assert final["status"] == "succeeded" and final["attempts"] == 2, final
        assert final["frames"] == {"done": 150, "total": 150}
        result = client.get(job["urls"]["result"], headers=auth(job))
        with av.open(io.BytesIO(result.content)) as video:
            assert sum(1 for _ in video.decode(video=0)) == 150


def test_the_cache_of_personal_networks_keeps_the_most_recently_used(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each process caches the networks it loads from Redis; beyond the limit the least
    recently used go (a cache hit counts as a use), and are fetched again when used again."""
    import hashlib
    import os

    from restyle.service.personal import PersonalStyle, new_style_id
    from restyle.service.settings import ServiceSettings
    from restyle.service.stores import redis_personal
    from restyle.service.stores.redis_backend import RedisBackend

    monkeypatch.setattr(redis_personal.tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.setattr(redis_personal, "MODEL_CACHE_ENTRIES", 2)
    backend = RedisBackend(ServiceSettings(data_dir=tmp_path, redis_url=redis_server.url))
    styles = []
    try:
        for n in range(3):
            data = f"network {n}".encode()
            style = PersonalStyle(
                id=new_style_id(),
                owner_sha256="cache-test",
                name=f"style {n}",
                model_sha256=hashlib.sha256(data).hexdigest(),
            )
            backend.personal.put(style, {"model.safetensors": data})
            styles.append(style)
        first, second = (backend.personal.model_path(s) for s in styles[:2])
        os.utime(first, (1, 1))  # long ago, the first the oldest
        os.utime(second, (2, 2))
        assert backend.personal.model_path(styles[0]) == first  # a hit: now the most recent
        third = backend.personal.model_path(styles[2])
        assert first.is_file() and third.is_file() and not second.exists()
        again = backend.personal.model_path(styles[1])  # fetched again; now the first is the oldest
        assert again == second and again.read_bytes() == b"network 1"
        assert sorted(first.parent.iterdir()) == sorted([again, third])
    finally:
        for style in styles:
            backend.personal.delete(style.id)
        backend.stop()
