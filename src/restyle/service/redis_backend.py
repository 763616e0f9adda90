"""The scale-out backend: records and files in Redis, jobs dispatched to `restyle worker` by RQ.

Why RQ: it is Redis-only (one moving part, which GPU machines reach by dialling out), runs plain
synchronous Python functions (what a PyTorch job is), keeps its queues as Redis lists (so Redis's
append-only file keeps queued jobs across a restart), and its `SimpleWorker` runs jobs in the
worker process itself, so models load once per worker. Celery and Dramatiq bring a broker
abstraction and their own result stores that this service does not need. RQ carries only the
job id, JSON-serialised: nothing from a client is ever pickled or unpickled.

Keys (prefix `restyle:`): `job:<id>` a hash, one JSON value per record field (so concurrent
updates of different fields never lose each other); `blob:<id>:<name>` the files, with a TTL;
`running` (set), `finished` (zset by finish time), `active:<client>` (set of its async jobs),
`stats` (hash of counters).
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from restyle.service.backend import Backend, bucket_keys
from restyle.service.jobs import JobRecord, JobStatus
from restyle.service.settings import ServiceSettings

PREFIX = "restyle:"
QUEUE_NAMES = ("restyle-sync", "restyle")  # a worker takes synchronous requests first
RUN_JOB = "restyle.service.worker.run_job"

# Update fields of a record only if it still exists (a deleted job must stay deleted).
_UPDATE_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""
# Queued → running, one more attempt, only if still queued: two workers never run one job.
_CLAIM = """
if redis.call('HGET', KEYS[1], 'status') ~= '"queued"' then return 0 end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts')) + 1
redis.call('HSET', KEYS[1], 'status', '"running"', 'attempts', tostring(attempts),
           'started_at', ARGV[1], 'heartbeat_at', ARGV[1], 'message', '"started"')
return 1
"""


class RedisBackend(Backend):
    mode = "redis"

    def __init__(self, settings: ServiceSettings, connection: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = connection or redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=10,
            socket_connect_timeout=5,
            health_check_interval=10,
        )
        self.queues = [
            Queue(name, connection=self.redis, serializer=JSONSerializer) for name in QUEUE_NAMES
        ]
        self._update = self.redis.register_script(_UPDATE_IF_EXISTS)
        self._claim = self.redis.register_script(_CLAIM)
        self.blob_ttl = int(settings.result_ttl_s + settings.job_timeout_s + 3600)

    # Records ---------------------------------------------------------------------------------
    def submit(self, record: JobRecord, blobs: dict[str, bytes]) -> None:
        with self.redis.pipeline() as pipe:
            for name, data in blobs.items():
                pipe.set(_blob(record.id, name), data, ex=self.blob_ttl)
            pipe.hset(_job(record.id), mapping=_encode(record.model_dump(mode="json")))  # type: ignore[arg-type]
            if record.priority == 0:
                pipe.sadd(_active(record.client), record.id)
            pipe.execute()
        self._enqueue(record)

    def _enqueue(self, record: JobRecord) -> None:
        queue = self.queues[0] if record.priority > 0 else self.queues[1]
        queue.enqueue_call(
            RUN_JOB,
            args=(record.id,),
            job_id=f"{record.id}_{record.attempts}",
            timeout=int(self.settings.job_timeout_s) + 60,
            result_ttl=0,
            failure_ttl=int(self.settings.result_ttl_s),
        )

    def get(self, job_id: str) -> JobRecord | None:
        data = self.redis.hgetall(_job(job_id))
        if not data:
            return None
        return JobRecord.model_validate(_decode(data))

    def claim(self, job_id: str, now: float) -> JobRecord | None:
        if not self._claim(keys=[_job(job_id)], args=[json.dumps(now)]):
            return None
        record = self.get(job_id)
        if record is not None:
            self._track(record)
        return record

    def queued(self, limit: int) -> list[JobRecord]:
        records = []
        for queue in self.queues:
            for rq_id in queue.get_job_ids(0, limit - 1):
                record = self.get(rq_id.rsplit("_", 1)[0])
                if record is not None and record.status == JobStatus.QUEUED:
                    records.append(record)
        return records[:limit]

    def update(self, job_id: str, **fields: Any) -> JobRecord | None:
        values = JobRecord.model_validate({**_placeholder(job_id), **fields}).model_dump(
            mode="json", include=set(fields)
        )
        argv = [item for pair in _encode(values).items() for item in pair]
        if not self._update(keys=[_job(job_id)], args=argv):
            return None
        record = self.get(job_id)
        if record is not None and "status" in fields:
            self._track(record)
        return record

    def _track(self, record: JobRecord) -> None:
        """Keep the running, finished and per-client sets in step with a status change."""
        with self.redis.pipeline() as pipe:
            if record.status == JobStatus.RUNNING:
                pipe.sadd(PREFIX + "running", record.id)
            elif record.status.finished:
                pipe.srem(PREFIX + "running", record.id)
                pipe.zadd(PREFIX + "finished", {record.id: record.finished_at or time.time()})
                pipe.srem(_active(record.client), record.id)
            pipe.execute()

    def delete(self, job_id: str) -> None:
        record = self.get(job_id)
        with self.redis.pipeline() as pipe:
            pipe.delete(_job(job_id), *(_blob(job_id, n) for n in _BLOBS))
            pipe.srem(PREFIX + "running", job_id)
            pipe.zrem(PREFIX + "finished", job_id)
            if record is not None:
                pipe.srem(_active(record.client), job_id)
            pipe.execute()

    def requeue(self, job_id: str) -> None:
        record = self.update(job_id, status=JobStatus.QUEUED, message="retrying")
        if record is not None:
            self.redis.srem(PREFIX + "running", job_id)
            self._enqueue(record)

    def running(self) -> list[JobRecord]:
        records = (self.get(_text(i)) for i in self.redis.smembers(PREFIX + "running"))
        return [r for r in records if r is not None]

    def finished_before(self, timestamp: float) -> list[str]:
        return [_text(i) for i in self.redis.zrangebyscore(PREFIX + "finished", 0, timestamp)]

    def active_count(self, client: str) -> int:
        return int(self.redis.scard(_active(client)))

    def queue_depth(self) -> int:
        return sum(q.count for q in self.queues)

    # Blobs -----------------------------------------------------------------------------------
    def put_blob(self, job_id: str, name: str, data: bytes) -> None:
        self.redis.set(_blob(job_id, name), data, ex=self.blob_ttl)

    def get_blob(self, job_id: str, name: str) -> bytes | None:
        value = self.redis.get(_blob(job_id, name))
        return value if isinstance(value, bytes) else None

    # Statistics ------------------------------------------------------------------------------
    def count_finished(self, status: JobStatus, seconds: float | None, error_code: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hincrbyfloat(PREFIX + "stats", f"finished:{status.value}", 1)
            if error_code:
                pipe.hincrbyfloat(PREFIX + "stats", f"errors:{error_code}", 1)
            if seconds is not None:
                for key in bucket_keys(seconds):
                    pipe.hincrbyfloat(PREFIX + "stats", key, 1)
                pipe.hincrbyfloat(PREFIX + "stats", "duration_sum", seconds)
                pipe.hincrbyfloat(PREFIX + "stats", "duration_count", 1)
            pipe.execute()

    def statistics(self) -> dict[str, float]:
        return {_text(k): float(v) for k, v in self.redis.hgetall(PREFIX + "stats").items()}

    def ready(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        self.redis.close()


_BLOBS = ("content", "style", "preview", "result")


def _job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def _blob(job_id: str, name: str) -> str:
    return f"{PREFIX}blob:{job_id}:{name}"


def _active(client: str) -> str:
    return f"{PREFIX}active:{client}"


def _encode(values: dict[str, Any]) -> dict[str | bytes, str]:
    return {k: json.dumps(v) for k, v in values.items()}


def _decode(data: dict[Any, Any]) -> dict[str, Any]:
    return {_text(k): json.loads(v) for k, v in data.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _placeholder(job_id: str) -> dict[str, Any]:
    """The least a record needs to validate, so that partial updates can be type-checked."""
    return {"id": job_id, "token_sha256": "", "client": "", "options": {}}
