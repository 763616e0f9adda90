"""The embedded backend: SQLite records, files on disk, worker threads in the API process.

Everything lives under `RESTYLE_DATA_DIR`: `jobs.sqlite3` and `jobs/<id>/<name>`. A restart of
the process keeps every job; jobs that were running when it stopped are retried or failed by
the sweeper at start-up (their heartbeat is old).

A disk that is full or read-only is an outage of the store, not a fault of the job at hand:
writes raise `StoreUnavailable`, `/readyz` says not ready, and the worker threads wait with a
pause that doubles up to `_MAX_PAUSE_S`, logging once per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from restyle.engines.holder import Engines
from restyle.service import runner
from restyle.service.backend import Backend, JobRefused, StoreUnavailable, bucket_keys
from restyle.service.jobs import JOB_ID_PATTERN, JobRecord, JobStatus
from restyle.service.personal import FILES, PersonalStyle, valid_id
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
CREATE TABLE IF NOT EXISTS personal (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS personal_owner ON personal (owner, created_at);
"""
_BLOB_NAMES = frozenset({"content", "style", "preview", "result"})
_FIRST_PAUSE_S = 0.5
_MAX_PAUSE_S = 10.0  # the longest a queued job waits after the disk is writable again


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """A failing disk or database (full, read-only, locked) as `StoreUnavailable`."""
    try:
        yield
    except (sqlite3.OperationalError, OSError) as exc:
        raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc


class _Outage:
    """The worker threads' shared backoff while the store cannot be written: the pause doubles
    up to `_MAX_PAUSE_S`, and the outage is logged when it starts and when it ends, not at every
    attempt."""

    def __init__(self) -> None:
        self.pause = 0.0
        self._lock = threading.Lock()

    def failed(self, error: Exception) -> float:
        with self._lock:
            if self.pause == 0.0:
                log.error("the job store cannot be written (%s); retrying with backoff", error)
            self.pause = min(max(2 * self.pause, _FIRST_PAUSE_S), _MAX_PAUSE_S)
            return self.pause

    def succeeded(self) -> None:
        with self._lock:
            if self.pause:
                log.warning("the job store can be written again")
            self.pause = 0.0


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
        # Uploads being checked and results being written: on the jobs' disk, so a finished
        # file is moved into its job's folder, not copied.
        self.incoming = self.root / "incoming"
        self.incoming.mkdir(exist_ok=True)
        self.styles = self.root / "styles"  # personal styles: styles/<id>/<file>
        self.styles.mkdir(exist_ok=True)
        self._db = sqlite3.connect(
            self.root / "jobs.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._stopping = False
        self._outage = _Outage()
        self._threads: list[threading.Thread] = []
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    # Records ---------------------------------------------------------------------------------
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
                    self.put_blob_file(record.id, name, data)
                else:
                    self.put_blob(record.id, name, data)
            with self._work, _store_errors():
                self._admit(record, max_per_client, max_queued)
                self._work.notify()
        except BaseException:
            shutil.rmtree(self._job_dir(record.id), ignore_errors=True)
            raise

    def _admit(self, record: JobRecord, max_per_client: int | None, max_queued: int | None) -> None:
        """Count and insert in one IMMEDIATE transaction (the lock held): no other writer, in
        this process or another on the same database, passes the same limit in between."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            refusal = self._refusal(record.client, max_per_client, max_queued)
            if refusal is not None:
                raise JobRefused(refusal)
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
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _refusal(
        self, client: str, max_per_client: int | None, max_queued: int | None
    ) -> Literal["client", "queue"] | None:
        if max_per_client is not None and self._active_count(client) >= max_per_client:
            return "client"
        if max_queued is not None and self._queue_depth() >= max_queued:
            return "queue"
        return None

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
        with _store_errors():
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

    def stranded(self, queued_before: float) -> list[str]:
        return []  # the queue is the records' status column: a queued record is always taken

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
            return self._active_count(client)

    def _active_count(self, client: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM jobs WHERE client = ? AND status IN (?, ?)",
            (client, JobStatus.QUEUED.value, JobStatus.RUNNING.value),
        ).fetchone()
        return int(row[0])

    def queue_depth(self) -> int:
        with self._lock:
            return self._queue_depth()

    def _queue_depth(self) -> int:
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
        with _store_errors():
            folder.mkdir(exist_ok=True)
            partial = folder / f".{name}.{threading.get_ident()}"
            partial.write_bytes(data)
            os.replace(partial, folder / name)  # readers never see half a file

    def scratch_dir(self) -> Path:
        return self.incoming

    def put_blob_file(self, job_id: str, name: str, path: Path) -> None:
        if name not in _BLOB_NAMES:
            raise ValueError(f"not a job file: {name!r}")
        folder = self._job_dir(job_id)
        with _store_errors():
            folder.mkdir(exist_ok=True)
            try:
                os.replace(path, folder / name)  # the scratch folder is on the same disk
            except OSError:  # another disk after all (a folder mounted in between): copy
                partial = folder / f".{name}.{threading.get_ident()}"
                shutil.copyfile(path, partial)
                os.replace(partial, folder / name)
                path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def work_dir(self, job_id: str) -> Iterator[Path]:
        # In the job's folder: on the store's disk (the result is moved, not copied), and
        # removed with the job, should it be deleted while it runs.
        folder = self._job_dir(job_id) / f".work-{threading.get_ident()}"
        with _store_errors():
            folder.mkdir(parents=True, exist_ok=True)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def blob_path(self, job_id: str, name: str) -> Path | None:
        if name not in _BLOB_NAMES:
            raise ValueError(f"not a job file: {name!r}")
        path = self._job_dir(job_id) / name
        return path if path.is_file() else None

    def remove_orphans(self, written_before: float) -> int:
        removed = 0
        with _store_errors():
            # Uploads that a process killed while checking them left in the scratch folder.
            for stale in list(self.incoming.iterdir()):
                with contextlib.suppress(FileNotFoundError):
                    if stale.is_file() and stale.stat().st_mtime < written_before:
                        stale.unlink()
            folders = list(self.files.iterdir())
        for folder in folders:
            if not re.fullmatch(JOB_ID_PATTERN, folder.name):
                continue  # not ours: left alone
            try:
                if folder.stat().st_mtime >= written_before:
                    continue  # a submission may be storing its record right now
            except FileNotFoundError:
                continue
            if self.get(folder.name) is None:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    def get_blob(self, job_id: str, name: str) -> bytes | None:
        if name not in _BLOB_NAMES:
            raise ValueError(f"not a job file: {name!r}")
        try:
            with _store_errors():
                return (self._job_dir(job_id) / name).read_bytes()
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                return None
            raise

    def delete_blob(self, job_id: str, name: str) -> None:
        if name not in _BLOB_NAMES:
            raise ValueError(f"not a job file: {name!r}")
        with _store_errors():
            (self._job_dir(job_id) / name).unlink(missing_ok=True)

    # Personal styles -------------------------------------------------------------------------
    def _style_dir(self, style_id: str) -> Path:
        if not valid_id(style_id):
            raise ValueError(f"not a personal style id: {style_id!r}")
        return self.styles / style_id

    def put_personal(
        self, style: PersonalStyle, files: Mapping[str, bytes], *, most: int | None = None
    ) -> bool:
        folder = self._style_dir(style.id)
        try:
            with _store_errors():
                folder.mkdir(exist_ok=True)
                for name, data in files.items():
                    if name not in FILES:
                        raise ValueError(f"not a personal style file: {name!r}")
                    partial = folder / f".{name}.{threading.get_ident()}"
                    partial.write_bytes(data)
                    os.replace(partial, folder / name)
            with self._lock, _store_errors():
                if most is not None:
                    (others,) = self._db.execute(
                        "SELECT COUNT(*) FROM personal WHERE owner = ? AND id != ?",
                        (style.owner_sha256, style.id),
                    ).fetchone()
                    if others >= most:
                        shutil.rmtree(folder, ignore_errors=True)
                        return False
                self._db.execute(
                    "INSERT INTO personal VALUES (?, ?, ?, ?, ?)",
                    (
                        style.id,
                        style.owner_sha256,
                        style.model_dump_json(),
                        style.created_at,
                        style.expires_at,
                    ),
                )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return True

    def get_personal(self, style_id: str) -> PersonalStyle | None:
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM personal WHERE id = ?", (style_id,)
            ).fetchone()
        return PersonalStyle.model_validate_json(row[0]) if row else None

    def personal_of(self, owner_sha256: str) -> list[PersonalStyle]:
        with self._lock:
            rows = self._db.execute(
                "SELECT record FROM personal WHERE owner = ? ORDER BY created_at", (owner_sha256,)
            ).fetchall()
        return [PersonalStyle.model_validate_json(r[0]) for r in rows]

    def update_personal(self, style_id: str, **fields: Any) -> PersonalStyle | None:
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM personal WHERE id = ?", (style_id,)
            ).fetchone()
            if row is None:
                return None
            style = PersonalStyle.model_validate(
                {**PersonalStyle.model_validate_json(row[0]).model_dump(), **fields}
            )
            with _store_errors():
                self._db.execute(
                    "UPDATE personal SET record = ?, expires_at = ? WHERE id = ?",
                    (style.model_dump_json(), style.expires_at, style_id),
                )
        return style

    def delete_personal(self, style_id: str) -> None:
        with self._lock, _store_errors():
            self._db.execute("DELETE FROM personal WHERE id = ?", (style_id,))
        shutil.rmtree(self._style_dir(style_id), ignore_errors=True)

    def personal_file(self, style_id: str, name: str) -> bytes | None:
        if name not in FILES:
            raise ValueError(f"not a personal style file: {name!r}")
        try:
            return (self._style_dir(style_id) / name).read_bytes()
        except FileNotFoundError:
            return None

    def personal_expired(self, now: float) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM personal WHERE expires_at IS NOT NULL AND expires_at < ?", (now,)
            ).fetchall()
        return [r[0] for r in rows]

    def personal_model(self, style: PersonalStyle) -> Path:
        return self._style_dir(style.id) / "model.safetensors"

    # Statistics ------------------------------------------------------------------------------
    def count_finished(self, status: JobStatus, seconds: float | None, error_code: str) -> None:
        keys = [f"finished:{status.value}"]
        if error_code:
            keys.append(f"errors:{error_code}")
        increments = dict.fromkeys(keys, 1.0)
        if seconds is not None:
            increments |= dict.fromkeys(bucket_keys(seconds), 1.0)
            increments |= {"duration_sum": seconds, "duration_count": 1.0}
        with self._lock, _store_errors():
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

    def unready_reason(self) -> str | None:
        if self._stopping:
            return "the server is stopping"
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return "the job database does not answer"
        return disk_problem([self.root, self.files], self.settings.min_free_bytes)

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
        while not self._stopping:
            job_id = None
            try:
                job_id = self._next_queued()
                if job_id is None:
                    return
                runner.run(self, job_id, self.settings, self.engines)
            except StoreUnavailable as exc:  # a full or read-only disk: wait, do not spin
                self._pause(self._outage.failed(exc))
                continue
            except Exception:  # the pool must outlive any one job
                log.exception("worker crashed on job %s", job_id)
                time.sleep(0.1)
                continue
            self._outage.succeeded()

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the backend stops."""
        with self._work:
            if not self._stopping:
                self._work.wait(timeout=seconds)

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
