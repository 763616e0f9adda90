"""Job statistics in SQLite (the `stats` table of counters) and the live counts of the queue."""

from __future__ import annotations

from restyle.service.jobs import JobStatus
from restyle.service.stores.base import StatsStore, bucket_keys
from restyle.service.stores.embedded_db import Database, count_active, count_queued, store_errors


class EmbeddedStatsStore(StatsStore):
    def __init__(self, db: Database) -> None:
        self._db, self._lock = db, db.lock

    def count_finished(self, status: JobStatus, seconds: float | None, error_code: str) -> None:
        keys = [f"finished:{status.value}"]
        if error_code:
            keys.append(f"errors:{error_code}")
        increments = dict.fromkeys(keys, 1.0)
        if seconds is not None:
            increments |= dict.fromkeys(bucket_keys(seconds), 1.0)
            increments |= {"duration_sum": seconds, "duration_count": 1.0}
        with self._lock, store_errors():
            self._db.connection.executemany(
                "INSERT INTO stats VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                list(increments.items()),
            )

    def counters(self) -> dict[str, float]:
        with self._lock:
            return dict(self._db.connection.execute("SELECT key, value FROM stats").fetchall())

    def active_count(self, client: str) -> int:
        with self._lock:
            return count_active(self._db, client)

    def queue_depth(self) -> int:
        with self._lock:
            return count_queued(self._db)
