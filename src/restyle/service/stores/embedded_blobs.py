"""A job's files on this disk: `RESTYLE_DATA_DIR/jobs/<id>/<name>`.

Uploads being checked and results being written go to `incoming/` and a job's work folder, on
the same disk, so a finished file is moved into its job's folder, not copied. A file is written
beside its final name and renamed, so readers never see half of one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from restyle.service.jobs import JOB_ID_PATTERN
from restyle.service.stores.base import JOB_FILES, BlobStore, StoreUnavailable
from restyle.service.stores.embedded_db import Database, store_errors

_BLOB_NAMES = frozenset(JOB_FILES)


class EmbeddedBlobStore(BlobStore):
    def __init__(self, root: Path, db: Database) -> None:
        self.files = root / "jobs"
        self.files.mkdir(parents=True, exist_ok=True)
        self.incoming = root / "incoming"
        self.incoming.mkdir(exist_ok=True)
        self._db = db  # to tell which folders belong to no job

    def job_dir(self, job_id: str) -> Path:
        # Ids come from the API's own generator, but a path is only ever built from a checked one.
        if not re.fullmatch(JOB_ID_PATTERN, job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self.files / job_id

    def drop_job(self, job_id: str) -> None:
        """Remove a job's folder with whatever is in it (the job store's `delete`)."""
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def put(self, job_id: str, name: str, data: bytes) -> None:
        if name not in _BLOB_NAMES:
            raise ValueError(f"not a job file: {name!r}")
        folder = self.job_dir(job_id)
        with store_errors():
            folder.mkdir(exist_ok=True)
            partial = folder / f".{name}.{threading.get_ident()}"
            partial.write_bytes(data)
            os.replace(partial, folder / name)  # readers never see half a file

    def scratch_dir(self) -> Path:
        return self.incoming

    def put_file(self, job_id: str, name: str, path: Path) -> None:
        if name not in _BLOB_NAMES:
            raise ValueError(f"not a job file: {name!r}")
        folder = self.job_dir(job_id)
        with store_errors():
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
        folder = self.job_dir(job_id) / f".work-{threading.get_ident()}"
        with store_errors():
            folder.mkdir(parents=True, exist_ok=True)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def path(self, job_id: str, name: str) -> Path | None:
        if name not in _BLOB_NAMES:
            raise ValueError(f"not a job file: {name!r}")
        path = self.job_dir(job_id) / name
        return path if path.is_file() else None

    def remove_orphans(self, written_before: float) -> int:
        removed = 0
        with store_errors():
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
            if not self._has_record(folder.name):
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    def _has_record(self, job_id: str) -> bool:
        with self._db.lock:
            row = self._db.connection.execute(
                "SELECT 1 FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return row is not None

    def get(self, job_id: str, name: str) -> bytes | None:
        if name not in _BLOB_NAMES:
            raise ValueError(f"not a job file: {name!r}")
        try:
            with store_errors():
                return (self.job_dir(job_id) / name).read_bytes()
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                return None
            raise

    def delete(self, job_id: str, name: str) -> None:
        if name not in _BLOB_NAMES:
            raise ValueError(f"not a job file: {name!r}")
        with store_errors():
            (self.job_dir(job_id) / name).unlink(missing_ok=True)
