"""The embedded store and the sweeper, in process: retries of lost jobs, expiry, safety."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from restyle.service import runner
from restyle.service.jobs import JobOptions, JobRecord, JobStatus, new_job_id, new_token
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import JobRefused, StoreUnavailable
from restyle.service.stores.embedded import EmbeddedBackend
from restyle.service.sweeper import sweep


@pytest.fixture()
def settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        data_dir=tmp_path, heartbeat_timeout_s=5, max_attempts=2, result_ttl_s=60
    )


@pytest.fixture()
def backend(settings: ServiceSettings) -> EmbeddedBackend:
    store = EmbeddedBackend(settings)
    yield store
    store.stop()


def new_job(backend: EmbeddedBackend, *, priority: int = 0) -> JobRecord:
    _, token_sha256 = new_token()
    record = JobRecord(
        id=new_job_id(),
        token_sha256=token_sha256,
        client="c",
        options=JobOptions(style="x"),
        priority=priority,
    )
    backend.jobs.submit(record, {"content": b"photo bytes"})
    return record


def test_a_lost_job_is_retried_then_failed_as_worker_lost(
    backend: EmbeddedBackend, settings: ServiceSettings
) -> None:
    job = new_job(backend)
    assert runner.claim(backend, job.id) is not None  # a worker took it, then died
    now = time.time()
    assert sweep(backend, settings, now=now + 1)["retried"] == 0  # heartbeat still fresh
    assert sweep(backend, settings, now=now + 10) == {
        "retried": 1, "lost": 0, "timed_out": 0, "stranded": 0, "expired": 0, "dropped": 0,
        "orphans": 0, "styles_expired": 0, "restocked": 0,
    }  # fmt: skip
    assert backend.jobs.get(job.id).status == JobStatus.QUEUED
    assert runner.claim(backend, job.id).attempts == 2  # the second worker dies too
    assert sweep(backend, settings, now=time.time() + 10)["lost"] == 1
    failed = backend.jobs.get(job.id)
    assert failed.status == JobStatus.FAILED and failed.error.code == "worker_lost"
    assert backend.stats.counters()["errors:worker_lost"] == 1


def test_finished_jobs_expire_with_their_files(
    backend: EmbeddedBackend, settings: ServiceSettings
) -> None:
    job = new_job(backend)
    backend.jobs.update(job.id, status=JobStatus.SUCCEEDED, finished_at=time.time())
    backend.blobs.put(job.id, "result", b"png")
    assert sweep(backend, settings, now=time.time() + 30)["expired"] == 0
    assert sweep(backend, settings, now=time.time() + 61)["expired"] == 1
    assert backend.jobs.get(job.id) is None
    assert not (settings.data_dir / "jobs" / job.id).exists()


def test_a_job_cancelled_while_queued_never_runs(backend: EmbeddedBackend) -> None:
    job = new_job(backend)
    backend.jobs.update(job.id, status=JobStatus.CANCELLED, cancel_requested=True)
    assert runner.claim(backend, job.id) is None
    assert backend.jobs.get(job.id).attempts == 0


def test_the_store_survives_reopening(settings: ServiceSettings) -> None:
    first = EmbeddedBackend(settings)
    job = new_job(first)
    first.stop()
    second = EmbeddedBackend(settings)
    try:
        assert second.jobs.get(job.id) == job
        assert second.blobs.get(job.id, "content") == b"photo bytes"
        assert second.stats.queue_depth() == 1 and second.stats.active_count("c") == 1
    finally:
        second.stop()


@pytest.mark.parametrize("job_id", ["../../etc", "a/b", "..", "x" * 200, ""])
def test_file_paths_are_only_built_from_job_ids(backend: EmbeddedBackend, job_id: str) -> None:
    with pytest.raises(ValueError, match="not a job id"):
        backend.blobs.get(job_id, "content")


def test_blob_names_are_a_closed_set(backend: EmbeddedBackend) -> None:
    job = new_job(backend)
    with pytest.raises(ValueError, match="not a job file"):
        backend.blobs.put(job.id, "../../escape", b"x")


def test_settings_come_from_restyle_environment_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RESTYLE_MAX_UPLOAD_BYTES", "123456")
    monkeypatch.setenv("RESTYLE_DATA_DIR", str(tmp_path))
    settings = ServiceSettings()
    assert settings.max_upload_bytes == 123456 and settings.data_dir == tmp_path
    monkeypatch.setenv("RESTYLE_HEAVY_WORKERS", "0")  # a lane with no worker would never run
    with pytest.raises(ValueError, match="heavy_workers"):
        ServiceSettings()


def test_queued_fast_jobs_alike_run_as_one_batch_with_the_results_of_single_runs(
    backend: EmbeddedBackend, settings: ServiceSettings
) -> None:
    settings = settings.model_copy(update={"batch_on_cpu": True})  # as on a GPU worker
    import io

    import numpy as np
    from PIL import Image

    from restyle.api import stylize
    from restyle.engines.holder import Engines
    from restyle.examples import example_path

    photos = {}
    for name in ("cat", "parrots", "lighthouse"):
        buffer = io.BytesIO()
        Image.open(example_path(name)).convert("RGB").resize((80, 60)).save(buffer, "PNG")
        photos[name] = buffer.getvalue()
    options = JobOptions(style="starry-night", options={"size": 64, "strength": 0.8})

    def submit(photo: bytes, job_options: JobOptions) -> JobRecord:
        record = JobRecord(id=new_job_id(), token_sha256="", client="c", options=job_options)
        backend.jobs.submit(record, {"content": photo})
        return record

    jobs = [submit(photo, options) for photo in photos.values()]
    other = submit(photos["cat"], options.model_copy(update={"options": {"size": 48}}))
    runner.run(backend, jobs[0].id, settings, Engines(device="cpu"))
    assert [backend.jobs.get(j.id).status for j in jobs] == [JobStatus.SUCCEEDED] * 3
    assert backend.jobs.get(other.id).status == JobStatus.QUEUED  # other options: not in the batch
    for job, photo in zip(jobs, photos.values(), strict=True):
        batched = np.asarray(Image.open(io.BytesIO(backend.blobs.get(job.id, "result"))))
        single = np.asarray(stylize(photo, "starry-night", method="fast", size=64, strength=0.8))
        assert batched.shape == single.shape == (48, 64, 3)
        assert np.abs(batched.astype(int) - single.astype(int)).max() <= 1


# Leftovers: refused submissions, orphaned folders, synchronous jobs nobody waits for --------


def job_folders(backend: EmbeddedBackend) -> list[str]:
    return sorted(p.name for p in backend.blobs.files.iterdir())


def test_a_refused_or_failed_submission_leaves_no_files(
    backend: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = new_job(backend)
    refused = JobRecord(id=new_job_id(), token_sha256="", client="c", options=JobOptions(style="x"))
    with pytest.raises(JobRefused):
        backend.jobs.submit(refused, {"content": b"photo", "style": b"painting"}, max_per_client=1)
    assert job_folders(backend) == [kept.id]

    def disk_full(*args: object) -> None:
        raise StoreUnavailable("OSError: [Errno 28] No space left on device")

    monkeypatch.setattr(backend.jobs, "_admit", disk_full)  # the insert fails after the files
    failing = JobRecord(id=new_job_id(), token_sha256="", client="d", options=JobOptions(style="x"))
    with pytest.raises(StoreUnavailable):
        backend.jobs.submit(failing, {"content": b"photo"})
    assert job_folders(backend) == [kept.id]


def test_the_sweeper_removes_old_folders_that_belong_to_no_job(
    backend: EmbeddedBackend, settings: ServiceSettings
) -> None:
    job = new_job(backend)
    old, fresh = new_job_id(), new_job_id()
    for orphan in (old, fresh):  # a submission killed between its files and its record
        backend.blobs.put(orphan, "content", b"photo")
    (backend.blobs.files / "not-a-job").mkdir()
    hour_ago = time.time() - 3600
    for name in (job.id, old):
        os.utime(backend.blobs.files / name, (hour_ago, hour_ago))
    assert sweep(backend, settings)["orphans"] == 1
    assert job_folders(backend) == sorted([job.id, fresh, "not-a-job"])
    assert backend.blobs.get(job.id, "content") == b"photo bytes"


def test_synchronous_jobs_are_dropped_not_retried_when_their_worker_is_lost(
    backend: EmbeddedBackend, settings: ServiceSettings
) -> None:
    queued_sync = new_job(backend, priority=10)
    running_sync = new_job(backend, priority=10)
    running = new_job(backend)
    for record in (running_sync, running):
        backend.jobs.update(
            record.id, status=JobStatus.RUNNING, attempts=1, heartbeat_at=time.time()
        )
    counts = sweep(backend, settings, all_lost=True)  # start-up after a crash
    assert (counts["dropped"], counts["retried"]) == (2, 1)
    assert backend.jobs.get(queued_sync.id) is None and backend.jobs.get(running_sync.id) is None
    assert job_folders(backend) == [running.id]
    assert backend.jobs.get(running.id).status == JobStatus.QUEUED
    # A running synchronous job whose heartbeat stopped, with the API alive: dropped too.
    lost = new_job(backend, priority=10)
    assert runner.claim(backend, lost.id) is not None
    assert sweep(backend, settings, now=time.time() + 10)["dropped"] == 1
    assert backend.jobs.get(lost.id) is None


def test_the_onnx_cache_keeps_the_most_recently_used_exports_within_its_bound(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from restyle.onnx_export import onnx_cache_dir, prune_onnx_cache

    monkeypatch.setenv("RESTYLE_CACHE_DIR", str(tmp_path))
    folder = onnx_cache_dir()
    folder.mkdir(parents=True)
    now = time.time()
    ages = {"a": 5000, "b": 4000, "c": 3000, "d": 2000, "recent": 10}
    for name, age in ages.items():
        path = folder / f"{name}.onnx"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - age, now - age))
    writing = folder / ".e.onnx.partial"  # an export being written
    writing.write_bytes(b"x" * 1000)
    os.utime(writing, (now - 9000, now - 9000))
    used = folder / "a.onnx"  # the oldest, but about to be served: touched and kept
    removed = prune_onnx_cache(2500, used=used)
    assert sorted(p.name for p in removed) == ["b.onnx", "c.onnx", "d.onnx"]
    assert sorted(p.name for p in folder.iterdir()) == [".e.onnx.partial", "a.onnx", "recent.onnx"]
    assert used.stat().st_mtime >= now - 1
    assert prune_onnx_cache(2500) == []  # within the bound now: nothing more goes


def test_a_progress_report_after_a_cancel_does_not_show_a_step(backend: EmbeddedBackend) -> None:
    # The race of a cancel with the worker's next progress write: the write lands on the
    # cancelled record, then the worker stops; the job must still read "cancelled".
    from restyle.progress import Progress
    from restyle.service.job_progress import ProgressReporter
    from restyle.service.jobs import JobStopped

    job = new_job(backend)
    running = runner.claim(backend, job.id)
    assert running is not None
    backend.jobs.update(
        job.id, status=JobStatus.CANCELLED, cancel_requested=True, message="cancelled"
    )
    settings = ServiceSettings(data_dir=backend.settings.data_dir)
    report = ProgressReporter(backend, running, settings)
    with pytest.raises(JobStopped):
        report(Progress(step=600, total=600, loss=1.0, elapsed=1.0))
    stored = backend.jobs.get(job.id)
    assert stored is not None and stored.message.startswith("step")  # the late write landed
    assert stored.public()["status"] == "cancelled"
    assert stored.public()["message"] == "cancelled"
