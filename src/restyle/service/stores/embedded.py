"""The embedded backend: SQLite records, files on disk, worker threads in the API process.

Everything lives under `RESTYLE_DATA_DIR`: `jobs.sqlite3`, `jobs/<id>/<name>` and
`styles/<id>/<file>`. A restart of the process keeps every job; jobs that were running when it
stopped are retried or failed by the sweeper at start-up (their heartbeat is old).

A disk that is full or read-only is an outage of the store, not a fault of the job at hand:
writes raise `StoreUnavailable`, `/readyz` says not ready, and the worker threads wait
(`embedded_workers`).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

from restyle.engines.holder import Engines
from restyle.service import runner
from restyle.service.jobs import JobRecord
from restyle.service.lanes import Lane
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend
from restyle.service.stores.embedded_blobs import EmbeddedBlobStore
from restyle.service.stores.embedded_db import Database
from restyle.service.stores.embedded_jobs import EmbeddedJobStore
from restyle.service.stores.embedded_lanes import EmbeddedLaneStore
from restyle.service.stores.embedded_personal import EmbeddedPersonalStyleStore
from restyle.service.stores.embedded_stats import EmbeddedStatsStore
from restyle.service.stores.embedded_workers import WorkerPool


class EmbeddedBackend(Backend):
    mode = "embedded"
    jobs: EmbeddedJobStore
    lanes: EmbeddedLaneStore
    blobs: EmbeddedBlobStore
    personal: EmbeddedPersonalStyleStore
    stats: EmbeddedStatsStore

    def __init__(self, settings: ServiceSettings, engines: Engines | None = None) -> None:
        self.settings = settings
        # The worker threads' engines: built once (at start, in the first worker thread) and
        # shared by every thread and every job.
        self.engines = engines or settings.engines()
        self.root = Path(settings.data_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        # One connection and one lock for every store: a count and an insert are one step.
        self.db = Database(self.root / "jobs.sqlite3")
        self.blobs = EmbeddedBlobStore(self.root, self.db)
        self.jobs = EmbeddedJobStore(self.db, self.blobs)
        self.lanes = EmbeddedLaneStore(self.db, self.jobs, lambda lane: self.pool.serving(lane))
        self.personal = EmbeddedPersonalStyleStore(self.root, self.db)
        self.stats = EmbeddedStatsStore(self.db)
        threads: list[tuple[Lane, ...]] = [("interactive",)] * settings.interactive_workers
        threads += [("heavy",)] * settings.heavy_workers
        self.pool = WorkerPool(
            self.jobs,
            self.lanes,
            self._run,
            setup=self.engines.setup,
            threads=threads,
            heavy_nice=settings.heavy_nice,
        )

    def _run(self, record: JobRecord) -> None:
        runner.run_claimed(self, record, self.settings, self.engines)

    def start(self) -> None:
        self.pool.start()

    def stop(self) -> None:
        self.pool.stop()
        self.db.close()

    def unready_reason(self) -> str | None:
        if self.pool.stopping:
            return "the server is stopping"
        try:
            with self.db.lock:
                self.db.connection.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return "the job database does not answer"
        return disk_problem([self.root, self.blobs.files], self.settings.min_free_bytes)


def disk_problem(folders: list[Path], min_free_bytes: int) -> str | None:
    """Why jobs cannot be stored in `folders` now, or None. Each must take a new file (not
    read-only, not replaced by a file), and their disk must keep `min_free_bytes` free: SQLite
    and the result files fail on a full disk long before it reads 0 bytes free. The messages name
    no path (they are served at /readyz)."""
    for folder in folders:
        try:
            with tempfile.TemporaryFile(dir=folder) as probe:
                probe.write(b"restyle")
                probe.flush()
        except OSError:
            return "the data directory is not writable"
    try:
        free = shutil.disk_usage(folders[0]).free
    except OSError:
        return "the data directory is not readable"
    if free < min_free_bytes:
        return "the data directory's disk is almost full (RESTYLE_MIN_FREE_BYTES)"
    return None
