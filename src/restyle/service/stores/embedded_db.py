"""The embedded stores' one SQLite database (`RESTYLE_DATA_DIR/jobs.sqlite3`) and its lock.

Every embedded store works through one connection under one lock (`Database.lock`), so a count
and an insert, a read and a write, are one step however the stores divide the tables between
them. A failing disk or database is `StoreUnavailable` (`store_errors`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from restyle.service.jobs import JobStatus
from restyle.service.stores.base import StoreUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    status TEXT NOT NULL,
    client TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    lane TEXT NOT NULL DEFAULT 'heavy'
);
CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS personal (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS personal_owner ON personal (owner, created_at);
CREATE TABLE IF NOT EXISTS turns (
    lane TEXT NOT NULL,
    client TEXT NOT NULL,
    served_at REAL NOT NULL,
    PRIMARY KEY (lane, client)
);
"""
# A database written before the lanes has no `lane` column: its jobs are heavy until they end.
_LANE_COLUMN = "ALTER TABLE jobs ADD COLUMN lane TEXT NOT NULL DEFAULT 'heavy'"
_INDEXES = """
DROP INDEX IF EXISTS jobs_queue;
CREATE INDEX IF NOT EXISTS jobs_lane ON jobs (status, lane);
"""


class Database:
    """The connection (autocommit: transactions are explicit) and the lock around it."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.executescript(_SCHEMA)
        columns = {row[1] for row in self.connection.execute("PRAGMA table_info(jobs)")}
        if "lane" not in columns:
            self.connection.execute(_LANE_COLUMN)
        self.connection.executescript(_INDEXES)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.connection.close()


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """A failing disk or database (full, read-only, locked) as `StoreUnavailable`."""
    try:
        yield
    except (sqlite3.OperationalError, OSError) as exc:
        raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc


def count_active(db: Database, client: str, lane: str | None = None) -> int:
    """Queued or running jobs of `client` (in `lane`, or in all), the lock held."""
    query = "SELECT COUNT(*) FROM jobs WHERE client = ? AND status IN (?, ?)"
    values: tuple[str, ...] = (client, JobStatus.QUEUED.value, JobStatus.RUNNING.value)
    if lane is not None:
        query, values = query + " AND lane = ?", (*values, lane)
    row = db.connection.execute(query, values).fetchone()
    return int(row[0])


def count_queued(db: Database) -> int:
    """Queued jobs (the lock held)."""
    row = db.connection.execute(
        "SELECT COUNT(*) FROM jobs WHERE status = ?", (JobStatus.QUEUED.value,)
    ).fetchone()
    return int(row[0])
