"""Job records in SQLite: the `jobs` table is the lanes' lines too (a queued record is a queued
job; `embedded_lanes` picks the next one).

A claim is a read and a write under the database's lock; admission counts and inserts in one
IMMEDIATE transaction. Waiting for a job (`POST /api/stylize`) is woken by the update that
finishes it, not by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from restyle.service.jobs import JobRecord, JobStatus
from restyle.service.stores.base import JobRefused, JobStore
from restyle.service.stores.embedded_blobs import EmbeddedBlobStore
from restyle.service.stores.embedded_db import Database, count_active, count_queued, store_errors


class EmbeddedJobStore(JobStore):
    def __init__(self, db: Database, blobs: EmbeddedBlobStore) -> None:
        self._db, self._lock, self._blobs = db, db.lock, blobs
        # Notified whenever a job is queued; the worker threads wait on it (`embedded_workers`).
        self.work = threading.Condition(self._lock)
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    def submit(
        self,
        record: JobRecord,
        blobs: Mapping[str, bytes | Path],
        *,
        max_per_client: int | None = None,
        max_queued: int | None = None,
    ) -> None:
        try:
            for name, data in blobs.items():  # the files first: a worker may take the job at once
                if isinstance(data, Path):
                    self._blobs.put_file(record.id, name, data)
                else:
                    self._blobs.put(record.id, name, data)
            with self.work, store_errors():
                self._admit(record, max_per_client, max_queued)
                self.work.notify_all()  # the threads of every lane wait on it
        except BaseException:
            self._blobs.drop_job(record.id)
            raise

    def _admit(self, record: JobRecord, max_per_client: int | None, max_queued: int | None) -> None:
        """Count and insert in one IMMEDIATE transaction (the lock held): no other writer, in
        this process or another on the same database, passes the same limit in between."""
        db = self._db.connection
        db.execute("BEGIN IMMEDIATE")
        try:
            refusal = self._refusal(record, max_per_client, max_queued)
            if refusal is not None:
                raise JobRefused(refusal)
            db.execute(
                "INSERT INTO jobs (id, record, status, client, priority, created_at, lane) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.model_dump_json(),
                    record.status.value,
                    record.client,
                    record.priority,
                    record.created_at,
                    record.lane,
                ),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _refusal(
        self, record: JobRecord, max_per_client: int | None, max_queued: int | None
    ) -> Literal["client", "queue"] | None:
        if (
            max_per_client is not None
            and count_active(self._db, record.client, record.lane) >= max_per_client
        ):
            return "client"
        if max_queued is not None and count_queued(self._db) >= max_queued:
            return "queue"
        return None

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            return self._get(job_id)

    def _get(self, job_id: str) -> JobRecord | None:
        row = self._db.connection.execute(
            "SELECT record FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        return JobRecord.model_validate_json(row[0]) if row else None

    def claim(self, job_id: str, now: float) -> JobRecord | None:
        with self._lock:
            return self.claim_held(job_id, now)

    def claim_held(self, job_id: str, now: float) -> JobRecord | None:
        """`claim`, the lock held."""
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
            rows = self._db.connection.execute(
                "SELECT record FROM jobs WHERE status = ? "
                "ORDER BY priority DESC, created_at LIMIT ?",
                (JobStatus.QUEUED.value, limit),
            ).fetchall()
        return [JobRecord.model_validate_json(r[0]) for r in rows]

    def records_held(self, status: JobStatus, lane: str) -> list[JobRecord]:
        """The records of `lane` with `status`, the lock held."""
        rows = self._db.connection.execute(
            "SELECT record FROM jobs WHERE status = ? AND lane = ?", (status.value, lane)
        ).fetchall()
        return [JobRecord.model_validate_json(r[0]) for r in rows]

    def _write(self, record: JobRecord, **fields: Any) -> JobRecord:
        """Store `record` with `fields` changed (the lock held)."""
        record = JobRecord.model_validate({**record.model_dump(), **fields})
        with store_errors():
            self._db.connection.execute(
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
            self._db.connection.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        self._blobs.drop_job(job_id)

    def requeue(self, job_id: str) -> None:
        with self.work:
            record = self._get(job_id)
            if record is None:
                return
            self._write(record, status=JobStatus.QUEUED, message="retrying")
            self.work.notify_all()

    def stranded(self, queued_before: float) -> list[str]:
        return []  # the queue is the records' status column: a queued record is always taken

    def running(self) -> list[JobRecord]:
        with self._lock:
            rows = self._db.connection.execute(
                "SELECT record FROM jobs WHERE status = ?", (JobStatus.RUNNING.value,)
            ).fetchall()
        return [JobRecord.model_validate_json(r[0]) for r in rows]

    def finished_before(self, timestamp: float) -> list[str]:
        with self._lock:
            rows = self._db.connection.execute(
                "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?",
                (timestamp,),
            ).fetchall()
        return [r[0] for r in rows]

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
