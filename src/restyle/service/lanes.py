"""Lanes: quick work never waits behind slow work.

Every job goes to one of two lanes, each served by its own workers:

- `interactive`: one pass of a feed-forward engine on a still (seconds at most), and every
  synchronous request (`POST /api/stylize`);
- `heavy`: optimisations (gatys), videos, refinements, and any still whose expected time is
  over `interactive_max_s` (a print-size pass on a slow CPU).

The lane comes from what the engine declares (`EngineSpec.interactive`) and its cost model's
estimate for the job, never from the engine's name.

Inside a lane the order is fair between clients: synchronous requests first (they are waited
for), then round robin between clients, the one served least recently first, each client's
jobs oldest first. So one client's ten heavy jobs take turns with another's first one, instead
of all running before it. Both backends take jobs in this order (the embedded one with
`next_in_line`, the Redis one with the same rule in a Lua script) and report a queued job's
place in it (`place`): its position, and when it is expected to start and finish, from the
jobs ahead of it (their expected times), what the lane's running jobs have left, and how many
workers serve the lane.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from restyle.engines.registry import ENGINES

Lane = Literal["interactive", "heavy"]
LANES: tuple[Lane, ...] = ("interactive", "heavy")
"""In the order a worker that serves both looks at them."""

TURNS_KEPT_S = 86400.0
"""A client not served for this long is a new client again (the lanes forget its turn)."""

# What a job with no estimate (its engine's cost was never measured) is taken to need.
_UNKNOWN_S: dict[Lane, float] = {"interactive": 2.0, "heavy": 60.0}


def _needs(expected_s: float | None, lane: Lane) -> float:
    """A job's expected seconds, or its lane's guess for a job without an estimate."""
    return _UNKNOWN_S[lane] if expected_s is None else expected_s


def lane_for(
    *, kind: str, method: str, priority: int, expected_s: float | None, interactive_max_s: float
) -> Lane:
    """The lane of a new job (see the module doc)."""
    if priority > 0:  # a synchronous request: someone waits for the answer
        return "interactive"
    if kind != "image" or not ENGINES[method].interactive:
        return "heavy"
    if expected_s is not None and expected_s > interactive_max_s:
        return "heavy"
    return "interactive"


def parse_lanes(text: str) -> tuple[Lane, ...]:
    """`--lanes heavy,interactive` → the lanes, in the order a worker looks at them; ValueError
    naming the known ones."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    lanes = tuple(lane for name in dict.fromkeys(names) for lane in LANES if lane == name)
    if not lanes or len(lanes) != len(set(names)):
        raise ValueError(f"lanes: a comma-separated list of {', '.join(LANES)}; got {text!r}")
    return lanes


@dataclass(frozen=True)
class Waiting:
    """A queued job as its lane sees it."""

    id: str
    client: str
    priority: int
    queued_at: float
    expected_s: float | None = None


@dataclass(frozen=True)
class Running:
    """A running job of the lane: what it has left."""

    started_at: float
    expected_s: float | None
    progress: float


@dataclass(frozen=True)
class LaneLine:
    """A lane now: its queued and running jobs, when each client was last served, its workers
    (None: not known, e.g. no worker has registered)."""

    lane: Lane
    waiting: tuple[Waiting, ...]
    running: tuple[Running, ...]
    served: Mapping[str, float]
    workers: int | None


@dataclass(frozen=True)
class Place:
    """Where a queued job stands in its lane."""

    lane: Lane
    position: int
    """1: the next job a worker of the lane takes."""
    ahead: int
    workers: int | None
    expected_start_s: float | None
    """Seconds from now until it is expected to start (None: no worker serves the lane)."""
    expected_finish_s: float | None


def _fair_key(job: Waiting, served: Mapping[str, float]) -> tuple[float, ...]:
    """Synchronous requests first (highest priority, then oldest); then the client served least
    recently (never: 0), then the oldest job."""
    if job.priority > 0:
        return (0.0, -job.priority, job.queued_at)
    return (1.0, served.get(job.client, 0.0), job.queued_at)


def next_in_line(waiting: Iterable[Waiting], served: Mapping[str, float]) -> Waiting | None:
    """The job a worker of the lane takes now (the embedded backend's rule; the Redis backend's
    Lua script `redis_lanes._TAKE` applies the same one)."""
    return min(waiting, key=lambda job: _fair_key(job, served), default=None)


def take_order(waiting: Iterable[Waiting], served: Mapping[str, float]) -> list[Waiting]:
    """Every queued job in the order workers will take them, as `next_in_line` repeated with
    each taken client served last: synchronous requests, then rounds in which each client with
    jobs left (in the order of their turns) gives its oldest one."""
    urgent: list[Waiting] = []
    by_client: dict[str, list[Waiting]] = {}
    for job in sorted(waiting, key=lambda job: job.queued_at):
        if job.priority > 0:
            urgent.append(job)
        else:
            by_client.setdefault(job.client, []).append(job)
    urgent.sort(key=lambda job: _fair_key(job, served))
    clients = sorted(by_client, key=lambda c: (served.get(c, 0.0), by_client[c][0].queued_at))
    rounds = max((len(jobs) for jobs in by_client.values()), default=0)
    fair = [by_client[c][k] for k in range(rounds) for c in clients if k < len(by_client[c])]
    return urgent + fair


def _left_s(job: Running, lane: Lane, now: float) -> float:
    """What a running job has left: its elapsed time stretched by its progress once that says
    something, else its estimate less its elapsed time."""
    elapsed = max(now - job.started_at, 0.0)
    if job.progress >= 0.05:
        return elapsed * (1 - job.progress) / job.progress
    return max(_needs(job.expected_s, lane) - elapsed, 0.0)


def place(job_id: str, line: LaneLine, *, now: float | None = None) -> Place | None:
    """Where the queued job `job_id` stands in `line` (None: not waiting in it). Its start is
    the time the lane's workers are expected to be free for it: each takes the next job as it
    frees, the running jobs first finishing what they have left."""
    now = time.time() if now is None else now
    order = take_order(line.waiting, line.served)
    index = next((i for i, job in enumerate(order) if job.id == job_id), None)
    if index is None:
        return None
    own_s = _needs(order[index].expected_s, line.lane)
    start: float | None = None
    if line.workers:
        free = sorted(_left_s(job, line.lane, now) for job in line.running)[: line.workers]
        free += [0.0] * (line.workers - len(free))
        heapq.heapify(free)
        for job in order[:index]:
            heapq.heappush(free, heapq.heappop(free) + _needs(job.expected_s, line.lane))
        start = free[0]
    return Place(
        lane=line.lane,
        position=index + 1,
        ahead=index,
        workers=line.workers,
        expected_start_s=None if start is None else round(start, 1),
        expected_finish_s=None if start is None else round(start + own_s, 1),
    )
