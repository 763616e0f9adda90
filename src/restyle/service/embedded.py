"""The embedded backend: SQLite records, files on disk, worker threads in the API process.

Everything lives under `RESTYLE_DATA_DIR`: `jobs.sqlite3` and `jobs/<id>/<name>`. A restart of
the process keeps every job; jobs that were running when it stopped are retried or failed by
the sweeper at start-up (their heartbeat is old).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from restyle.engines.holder import Engines
from restyle.service import runner
from restyle.service.backend import Backend, bucket_keys
from restyle.service.jobs import JOB_ID_PATTERN, JobRecord, JobStatus
from restyle.service.settings import ServiceSettings

log = logging.getLogger("restyle.service")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    status TEXT NOT NULL,
    client TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, priority DESC, created_at);
CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, value REAL NOT NULL);
"""
_BLOB_NAMES = frozenset({"content", "style", "preview", "result"})


class EmbeddedBackend(Backend):
    mode = "embedded"

    def __init__(self, settings: ServiceSettings, engines: Engines | None = None) -> None:
        self.settings = settings
        # The worker threads' engines: built once (at start, in the first worker thread) and
        # shared by every thread and every job.
        self.engines = engines or settings.engines()
        self.root = Path(settings.data_dir)
        self.files = self.root / "jobs"
        self.files.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.root / "jobs.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    # Records ---------------------------------------------------------------------------------
    def submit(self, record: JobRecord, blobs: dict[str, bytes]) -> None:
        for name, data in blobs.items():
            self.put_blob(record.id, name, data)
        with self._work:
            self._db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (
                    record.id,
                    record.model_dump_json(),
                    record.status.value,
                    record.client,
                    record.priority,
                    record.created_at,
                ),
            )
            self._work.notify()

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            return self._get(job_id)

    def _get(self, job_id: str) -> JobRecord | None:
        row = self._db.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobRecord.model_validate_json(row[0]) if row else None

    def claim(self, job_id: str, now: float) -> JobRecord | None:
        with self._lock:
            record = self._get(job_id)
            if record is None or record.status != JobStatus.QUEUED:
                return None
            return self._write(
                record,
                status=JobStatus.RUNNING,
                attempts=record.attempts + 1,
                started_at=now,
                heartbeat_at=now,
                message="started",
            )

    def queued(self, limit: int) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT record FROM jobs WHERE status = ? "
                "ORDER BY priority DESC, created_at LIMIT ?",
                (JobStatus.QUEUED.value, limit),
            ).fetchall()
        return [JobRecord.model_validate_json(r[0]) for r in rows]

    def _write(self, record: JobRecord, **fields: Any) -> JobRecord:
        """Store `record` with `fields` changed (the lock held)."""
        record = JobRecord.model_validate({**record.model_dump(), **fields})
        self._db.execute(
            "UPDATE jobs SET record = ?, status = ?, finished_at = ? WHERE id = ?",
            (record.model_dump_json(), record.status.value, record.finished_at, record.id),
        )
        return record

    def update(self, job_id: str, **fields: Any) -> JobRecord | None:
        with self._lock:
            record = self._get(job_id)
            if record is None:
                return None
            record = self._write(record, **fields)
        if record.status.finished:
            self._wake_waiters(job_id)
        return record

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        shutil.rmtree(self._job_dir(job_id), ignore_errors=True)

    def requeue(self, job_id: str) -> None:
        with self._work:
            record = self._get(job_id)
            if record is None:
                return
            self._write(record, status=JobStatus.QUEUED, message="retrying")
            self._work.notify()

    def running(self) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT record FROM jobs WHERE status = ?", (JobStatus.RUNNING.value,)
            ).fetchall()
        return [JobRecord.model_validate_json(r[0]) for r in rows]

    def finished_before(self, timestamp: float) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?",
                (timestamp,),
            ).fetchall()
        return [r[0] for r in rows]

    def active_count(self, client: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE client = ? AND priority = 0 AND status IN (?, ?)",
                (client, JobStatus.QUEUED.value, JobStatus.RUNNING.value),
            ).fetchone()
        return int(row[0])

    def queue_depth(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status = ?", (JobStatus.QUEUED.value,)
            ).fetchone()
        return int(row[0])

    # Blobs -----------------------------------------------------------------------------------
    def _job_dir(self, job_id: str) -> Path:
        # Ids come from the API's own generator, but a path is only ever built from a checked one.
        if not re.fullmatch(JOB_ID_PATTERN, job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self.files / job_id

    def put_blob(self, job_id: str, name: str, data: bytes) -> None:
        if name not in _BLOB_NAMES:
            raise ValueError(f"not a job file: {name!r}")
        folder = self._job_dir(job_id)
        folder.mkdir(exist_ok=True)
        partial = folder / f".{name}.{threading.get_ident()}"
        partial.write_bytes(data)
        os.replace(partial, folder / name)  # readers never see half a file

    def get_blob(self, job_id: str, name: str) -> bytes | None:
        if name not in _BLOB_NAMES:
            raise ValueError(f"not a job file: {name!r}")
        try:
            return (self._job_dir(job_id) / name).read_bytes()
        except FileNotFoundError:
            return None

    # Statistics ------------------------------------------------------------------------------
    def count_finished(self, status: JobStatus, seconds: float | None, error_code: str) -> None:
        keys = [f"finished:{status.value}"]
        if error_code:
            keys.append(f"errors:{error_code}")
        increments = dict.fromkeys(keys, 1.0)
        if seconds is not None:
            increments |= dict.fromkeys(bucket_keys(seconds), 1.0)
            increments |= {"duration_sum": seconds, "duration_count": 1.0}
        with self._lock:
            self._db.executemany(
                "INSERT INTO stats VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                list(increments.items()),
            )

    def statistics(self) -> dict[str, float]:
        with self._lock:
            return dict(self._db.execute("SELECT key, value FROM stats").fetchall())

    # Workers ---------------------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self.settings.workers):
            thread = threading.Thread(target=self._work_loop, name=f"restyle-worker-{i}")
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        with self._work:
            self._stopping = True
            self._work.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._db.close()

    def ready(self) -> bool:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return not self._stopping

    def _next_queued(self) -> str | None:
        with self._work:
            while not self._stopping:
                row = self._db.execute(
                    "SELECT id FROM jobs WHERE status = ? "
                    "ORDER BY priority DESC, created_at LIMIT 1",
                    (JobStatus.QUEUED.value,),
                ).fetchone()
                if row:
                    return str(row[0])
                self._work.wait(timeout=1.0)
        return None

    def _work_loop(self) -> None:
        try:
            self.engines.setup()  # off the event loop; the first job waits for it
        except Exception:  # a broken engine fails its jobs with a clear error, not the pool
            log.exception("building the engines failed")
        while (job_id := self._next_queued()) is not None:
            try:
                runner.run(self, job_id, self.settings, self.engines)
            except Exception:  # the pool must outlive any one job
                log.exception("worker crashed on job %s", job_id)
                time.sleep(0.1)

    # Waiting for a job (POST /api/stylize) ----------------------------------------------------
    async def wait_finished(self, job_id: str, timeout: float) -> JobRecord | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._waiters.setdefault(job_id, []).append((loop, future))
        try:
            record = await asyncio.to_thread(self.get, job_id)
            if record is not None and not record.status.finished:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(future, timeout)
            return await asyncio.to_thread(self.get, job_id)
        finally:
            with self._lock:
                waiters = self._waiters.get(job_id, [])
                if (loop, future) in waiters:
                    waiters.remove((loop, future))
                if not waiters:
                    self._waiters.pop(job_id, None)

    def _wake_waiters(self, job_id: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(job_id, []))
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
