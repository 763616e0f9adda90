"""The stores' interfaces, and the `Backend` that holds one of each.

- `EmbeddedBackend` (`restyle serve` alone): records in SQLite, files on local disk, a pool of
  worker threads in the API process. Nothing else to start; survives a restart.
- `RedisBackend` (`RESTYLE_REDIS_URL`): records and files in Redis, jobs dispatched with RQ to
  `restyle worker` processes that connect out to Redis from anywhere.

The API, the runner and the sweeper only ever speak to these interfaces: `backend.jobs` (records,
admission, claims), `backend.lanes` (which job a worker takes next, a queued job's place),
`backend.blobs` (a job's files), `backend.personal` (personal
styles and their files), `backend.stats` (what /metrics and the limits count).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from restyle.service.jobs import JobRecord, JobStatus
from restyle.service.lanes import Lane, LaneLine
from restyle.service.personal import PersonalStyle

# Job statistics kept by every backend and exported at /metrics.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
JOB_FILES = ("content", "style", "preview", "result")
"""The names a job's files may have: its photo (or video), its painting, its latest preview, its
result."""


class JobRefused(Exception):
    """A new job was not admitted: its client has too many, or the queue is full."""

    def __init__(self, reason: Literal["client", "queue"]) -> None:
        super().__init__(reason)
        self.reason = reason


class StoreUnavailable(Exception):
    """The job store cannot be written now (disk full or read-only, database locked)."""


class JobStore(abc.ABC):
    """Job records: admission, the queue, atomic claims, updates, and the sweeper's lists."""

    @abc.abstractmethod
    def submit(
        self,
        record: JobRecord,
        blobs: Mapping[str, bytes | Path],
        *,
        max_per_client: int | None = None,
        max_queued: int | None = None,
    ) -> None:
        """Store a new job with its input files and queue it. A file given as a `Path` (a
        video, spooled to `BlobStore.scratch_dir()`) is taken into the store: moved there, or
        read and removed.

        With limits, admission is atomic: the client's queued or running jobs and the queued
        jobs in all are counted and the job inserted as one step, so concurrent requests cannot
        all pass the check; `JobRefused` when a limit is reached (nothing is stored then)."""

    @abc.abstractmethod
    def get(self, job_id: str) -> JobRecord | None: ...

    @abc.abstractmethod
    def claim(self, job_id: str, now: float) -> JobRecord | None:
        """Atomically turn a queued job into a running one (one more attempt); None if it was
        not queued (taken by another worker, cancelled, deleted)."""

    @abc.abstractmethod
    def queued(self, limit: int) -> list[JobRecord]:
        """The next `limit` queued jobs, in the order workers take them."""

    @abc.abstractmethod
    def update(self, job_id: str, **fields: Any) -> JobRecord | None:
        """Set some fields of a record (atomically w.r.t. other updates); None if it is gone."""

    @abc.abstractmethod
    def delete(self, job_id: str) -> None:
        """Forget a job: record and files."""

    @abc.abstractmethod
    def requeue(self, job_id: str) -> None:
        """Queue an existing record again (its worker was lost)."""

    @abc.abstractmethod
    def stranded(self, queued_before: float) -> list[str]:
        """Ids of jobs whose record says queued since before `queued_before` but which no queue
        holds (a worker died between taking and claiming one, or the queue entry was lost)."""

    @abc.abstractmethod
    def running(self) -> list[JobRecord]: ...

    @abc.abstractmethod
    def finished_before(self, timestamp: float) -> list[str]:
        """Ids of jobs that finished before `timestamp` (for the result TTL)."""

    async def wait_finished(self, job_id: str, timeout: float) -> JobRecord | None:
        """Wait until the job has finished (or `timeout` passed); its latest record."""
        deadline = time.monotonic() + timeout
        while True:
            record = await asyncio.to_thread(self.get, job_id)
            if record is None or record.status.finished or time.monotonic() >= deadline:
                return record
            await asyncio.sleep(0.05)


class LaneStore(abc.ABC):
    """The lanes' lines (`restyle.service.lanes`): which queued job a worker takes next, and
    what a queued job waits for."""

    @abc.abstractmethod
    def take(self, lanes: Sequence[Lane], now: float) -> JobRecord | None:
        """Claim (as `JobStore.claim`) the job that comes next in the first of `lanes` that has
        one, in the lanes' fair order, and count it as its client's turn; None when they are
        empty."""

    @abc.abstractmethod
    def line(self, lane: Lane) -> LaneLine:
        """The lane now: its queued and running jobs, its clients' turns, its workers."""

    def restock(self) -> int:
        """Mend the lanes' dispatch where queued jobs have no worker told about them (Redis: a
        lost ticket); how many were mended. The embedded workers read the lanes themselves."""
        return 0


class BlobStore(abc.ABC):
    """A job's files (`JOB_FILES`): as bytes, or as files for videos."""

    @abc.abstractmethod
    def put(self, job_id: str, name: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def get(self, job_id: str, name: str) -> bytes | None: ...

    @abc.abstractmethod
    def delete(self, job_id: str, name: str) -> None:
        """Remove one of a job's files, if it is there (the record stays)."""

    def remove_orphans(self, written_before: float) -> int:
        """Remove files written before `written_before` that belong to no job (a submission
        that died between writing its files and storing its record; a worker's late write for
        a deleted job); how many jobs' files went. Redis needs none: its files expire."""
        return 0

    def scratch_dir(self) -> Path:
        """Where uploads and results are written before they are stored (`put_file`)."""
        return Path(tempfile.gettempdir())

    def put_file(self, job_id: str, name: str, path: Path) -> None:
        """Store the file at `path` as a job's file; `path` is gone afterwards. (Here: read
        into memory and stored as bytes; the embedded store moves the file.)"""
        self.put(job_id, name, path.read_bytes())
        path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def work_dir(self, job_id: str) -> Iterator[Path]:
        """A folder for a running job's files (a video being written), removed afterwards."""
        with tempfile.TemporaryDirectory(prefix=".restyle-job-") as folder:
            yield Path(folder)

    def path(self, job_id: str, name: str) -> Path | None:
        """The local file that holds a job's file, where the store keeps files on this
        machine's disk (to be read in place, with byte ranges); None otherwise or if absent."""
        return None

    @contextlib.contextmanager
    def as_file(self, job_id: str, name: str) -> Iterator[Path | None]:
        """A job's file as a local file for the block (PyAV reads files): the store's own file
        where it has one, else a temporary copy removed afterwards; None if absent."""
        path = self.path(job_id, name)
        if path is not None:
            yield path
            return
        data = self.get(job_id, name)
        if data is None:
            yield None
            return
        handle, temporary = tempfile.mkstemp(prefix=f".{name}-", dir=self.scratch_dir())
        try:
            with os.fdopen(handle, "wb") as target:
                target.write(data)
            del data
            yield Path(temporary)
        finally:
            Path(temporary).unlink(missing_ok=True)


class PersonalStyleStore(abc.ABC):
    """Personal styles (`restyle.service.personal`): records and files (`personal.FILES`)."""

    @abc.abstractmethod
    def put(
        self, style: PersonalStyle, files: Mapping[str, bytes], *, most: int | None = None
    ) -> bool:
        """Store a new personal style with its files (`personal.FILES`: model, thumbnail,
        preview), unless its owner already holds `most` others: then False and nothing is
        stored. The count and the store are one step, so workers finishing together cannot
        pass the quota between them."""

    @abc.abstractmethod
    def get(self, style_id: str) -> PersonalStyle | None: ...

    @abc.abstractmethod
    def of_owner(self, owner_sha256: str) -> list[PersonalStyle]:
        """An owner's styles, oldest first."""

    @abc.abstractmethod
    def update(self, style_id: str, **fields: Any) -> PersonalStyle | None: ...

    @abc.abstractmethod
    def delete(self, style_id: str) -> None:
        """Forget a personal style: record and files."""

    @abc.abstractmethod
    def file(self, style_id: str, name: str) -> bytes | None: ...

    @abc.abstractmethod
    def expired(self, now: float) -> list[str]:
        """Ids of the personal styles not kept whose time ran out before `now`."""

    @abc.abstractmethod
    def model_path(self, style: PersonalStyle) -> Path:
        """The style's network as a local file (what the fast engine loads): the store's own
        file, or a copy in this machine's cache, keyed by the network's digest."""


class StatsStore(abc.ABC):
    """What /metrics and the admission limits count."""

    @abc.abstractmethod
    def count_finished(self, status: JobStatus, seconds: float | None, error_code: str) -> None:
        """Add a finished job to the statistics (its run time, when it ran)."""

    @abc.abstractmethod
    def counters(self) -> dict[str, float]:
        """Counters: `finished:<status>`, `errors:<code>`, `duration_bucket:<le>`, sum, count."""

    @abc.abstractmethod
    def active_count(self, client: str) -> int:
        """Queued or running jobs of one client."""

    @abc.abstractmethod
    def queue_depth(self) -> int: ...


class Backend(abc.ABC):
    """One store of each kind, sharing their connection, and what runs beside them."""

    mode: str
    # What a store method raises while the store itself is unreachable or unwritable, as opposed
    # to a problem of one job: a worker waits such an outage out instead of failing its job.
    unavailable: tuple[type[Exception], ...] = (StoreUnavailable,)
    jobs: JobStore
    lanes: LaneStore
    blobs: BlobStore
    personal: PersonalStyleStore
    stats: StatsStore

    def start(self) -> None:  # noqa: B027 - only the embedded backend has workers to start
        """Start in-process workers, if this backend has any."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop workers and close connections."""

    @abc.abstractmethod
    def unready_reason(self) -> str | None:
        """None when jobs can be accepted now, else why not (store unreachable, disk full)."""

    def ready(self) -> bool:
        return self.unready_reason() is None


def bucket_keys(seconds: float) -> list[str]:
    """The cumulative histogram buckets a duration falls in (Prometheus `le` semantics)."""
    return [f"duration_bucket:{le}" for le in DURATION_BUCKETS if seconds <= le] + [
        "duration_bucket:+Inf"
    ]
