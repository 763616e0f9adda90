"""The embedded backend's lanes: the queued rows of each lane, taken in the lanes' fair order
(`restyle.service.lanes.next_in_line`) under the database's lock, and each client's last turn
in the `turns` table."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from restyle.service.jobs import JobRecord, JobStatus
from restyle.service.lanes import TURNS_KEPT_S, Lane, LaneLine, Running, Waiting, next_in_line
from restyle.service.stores.base import LaneStore
from restyle.service.stores.embedded_db import Database, store_errors
from restyle.service.stores.embedded_jobs import EmbeddedJobStore


class EmbeddedLaneStore(LaneStore):
    def __init__(
        self, db: Database, jobs: EmbeddedJobStore, workers: Callable[[Lane], int]
    ) -> None:
        self._db, self._lock, self._jobs, self._workers = db, db.lock, jobs, workers

    def take(self, lanes: Sequence[Lane], now: float) -> JobRecord | None:
        with self._lock:
            return self.take_held(lanes, now)

    def take_held(self, lanes: Sequence[Lane], now: float) -> JobRecord | None:
        """`take`, the lock held (the worker threads wait on `EmbeddedJobStore.work`)."""
        db = self._db.connection
        for lane in lanes:
            rows = db.execute(
                "SELECT id, client, priority, created_at FROM jobs WHERE status = ? AND lane = ?",
                (JobStatus.QUEUED.value, lane),
            ).fetchall()
            if not rows:
                continue
            waiting = [Waiting(id=r[0], client=r[1], priority=r[2], queued_at=r[3]) for r in rows]
            job = next_in_line(waiting, self._served(lane))
            assert job is not None
            record = self._jobs.claim_held(job.id, now)
            if record is None:  # cannot happen under the lock; stay safe all the same
                continue
            with store_errors():
                db.execute(
                    "INSERT INTO turns VALUES (?, ?, ?) ON CONFLICT(lane, client) "
                    "DO UPDATE SET served_at = excluded.served_at",
                    (lane, job.client, now),
                )
                db.execute("DELETE FROM turns WHERE served_at < ?", (now - TURNS_KEPT_S,))
            return record
        return None

    def _served(self, lane: Lane) -> dict[str, float]:
        rows = self._db.connection.execute(
            "SELECT client, served_at FROM turns WHERE lane = ?", (lane,)
        ).fetchall()
        return {client: served for client, served in rows}

    def line(self, lane: Lane) -> LaneLine:
        with self._lock:
            queued = self._jobs.records_held(JobStatus.QUEUED, lane)
            running = self._jobs.records_held(JobStatus.RUNNING, lane)
            served = self._served(lane)
        return LaneLine(
            lane=lane,
            waiting=tuple(
                Waiting(
                    id=r.id,
                    client=r.client,
                    priority=r.priority,
                    queued_at=r.created_at,
                    expected_s=r.expected_s,
                )
                for r in queued
            ),
            running=tuple(
                Running(
                    started_at=r.started_at or r.created_at,
                    expected_s=r.expected_s,
                    progress=r.progress,
                )
                for r in running
            ),
            served=served,
            workers=self._workers(lane),
        )
