"""A queued job's place in its lane (`restyle.service.lanes.place`), as `GET /api/jobs/{id}` and
its event stream report it: each lane's line is read from the store at most every `ttl` seconds
and shared by every request of the process, since each open event stream asks four times a
second."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

from restyle.service.jobs import JobRecord, JobStatus
from restyle.service.lanes import Lane, LaneLine, place
from restyle.service.stores.base import Backend


class Places:
    def __init__(self, backend: Backend, ttl: float = 0.5) -> None:
        self.backend, self.ttl = backend, ttl
        self._lines: dict[Lane, tuple[float, LaneLine]] = {}
        self._lock = threading.Lock()

    def _line(self, lane: Lane) -> LaneLine:
        now = time.monotonic()
        with self._lock:
            cached = self._lines.get(lane)
            if cached is not None and now - cached[0] <= self.ttl:
                return cached[1]
        line = self.backend.lanes.line(lane)
        with self._lock:
            self._lines[lane] = (now, line)
        return line

    def forget(self, lane: Lane) -> None:
        """Read the lane afresh next time (a job was just queued in it)."""
        with self._lock:
            self._lines.pop(lane, None)

    def status(self, record: JobRecord) -> dict[str, Any]:
        """The job as its owner sees it (`JobRecord.public()`), with `queue`: its place while
        it is queued (null otherwise, or when the lane's line no longer holds it)."""
        found = None
        if record.status == JobStatus.QUEUED:
            found = place(record.id, self._line(record.lane))
        queue = dataclasses.asdict(found) if found is not None else None
        return {**record.public(), "queue": queue}
