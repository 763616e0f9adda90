"""The Redis stores' keys and how values are written in them.

Keys (prefix `restyle:`): `job:<id>` a hash, one JSON value per record field (so concurrent
updates of different fields never lose each other); `blob:<id>:<name>` the files, with a TTL;
`queued` (zset by the time a job was queued), `running` (set), `finished` (zset by finish time),
`active:<lane>:<client>` (set of its queued or running jobs in a lane), `stats` (hash of
counters). The lanes (`redis_lanes`): `lane:<lane>` (zset of its queued jobs by `order_score`),
`lane:<lane>:clients` (hash: a queued job's client), `turns:<lane>` (zset: each client by when
it was last served); RQ's queues `restyle-<lane>` hold one ticket per queued job. Personal
styles: `style:<id>` (the record as JSON), `style:<id>:<file>` (the network, the painting, the
preview: no TTL, the sweeper expires styles), `owner:<token sha256>` (zset of its styles by
creation), `styles:expiring` (zset by expiry; a kept style leaves it).
"""

from __future__ import annotations

import json
from typing import Any

PREFIX = "restyle:"
QUEUED = PREFIX + "queued"
RUNNING = PREFIX + "running"
FINISHED = PREFIX + "finished"
STATS = PREFIX + "stats"
STYLES_EXPIRING = PREFIX + "styles:expiring"


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def blob(job_id: str, name: str) -> str:
    return f"{PREFIX}blob:{job_id}:{name}"


def style(style_id: str) -> str:
    return f"{PREFIX}style:{style_id}"


def style_file(style_id: str, name: str) -> str:
    return f"{PREFIX}style:{style_id}:{name}"


def owner(owner_sha256: str) -> str:
    return f"{PREFIX}owner:{owner_sha256}"


def active(client: str, lane: str) -> str:
    return f"{PREFIX}active:{lane}:{client}"


def lane(name: str) -> str:
    return f"{PREFIX}lane:{name}"


def lane_clients(name: str) -> str:
    return f"{PREFIX}lane:{name}:clients"


def turns(name: str) -> str:
    return f"{PREFIX}turns:{name}"


def order_score(created_at: float, priority: int) -> float:
    """A queued job's score in its lane's zset: its age, and a synchronous request (priority
    above 0) far ahead of every other (the take script serves a negative score first)."""
    return created_at - 1e10 * max(priority, 0)


def encode(values: dict[str, Any]) -> dict[str | bytes, str]:
    return {k: json.dumps(v) for k, v in values.items()}


def decode(data: dict[Any, Any]) -> dict[str, Any]:
    return {text(k): json.loads(v) for k, v in data.items()}


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
