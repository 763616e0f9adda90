"""The scale-out backend: records and files in Redis, jobs dispatched to `restyle worker` by RQ.

Why RQ: it is Redis-only (one moving part, which GPU machines reach by dialling out), runs plain
synchronous Python functions (what a PyTorch job is), keeps its queues as Redis lists (so Redis's
append-only file keeps queued jobs across a restart), and its `SimpleWorker` runs jobs in the
worker process itself, so models load once per worker. Celery and Dramatiq bring a broker
abstraction and their own result stores that this service does not need. RQ carries only the
job id, JSON-serialised: nothing from a client is ever pickled or unpickled.

Keys (prefix `restyle:`): `job:<id>` a hash, one JSON value per record field (so concurrent
updates of different fields never lose each other); `blob:<id>:<name>` the files, with a TTL;
`queued` (zset by the time a job was queued), `running` (set), `finished` (zset by finish time),
`active:<client>` (set of its queued or running jobs), `stats` (hash of counters). Personal
styles: `style:<id>` (the record as JSON), `style:<id>:<file>` (the network, the painting, the
preview: no TTL, the sweeper expires styles), `owner:<token sha256>` (zset of its styles by
creation), `styles:expiring` (zset by expiry; a kept style leaves it). A worker or API process
that needs a network copies it into a local cache folder, named by its digest.

Every command is retried with backoff through a Redis outage of up to `store_retry_s` (a
restart, a fail-over), in the API and in the workers, RQ's own commands included: a worker that
is busy when Redis restarts keeps its job's outcome and writes it once Redis is back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from rq import Queue
from rq.serializers import JSONSerializer

from restyle.service.backend import Backend, JobRefused, bucket_keys
from restyle.service.jobs import JobRecord, JobStatus
from restyle.service.personal import FILES, PersonalStyle
from restyle.service.settings import ServiceSettings

PREFIX = "restyle:"
QUEUE_NAMES = ("restyle-sync", "restyle")  # a worker takes synchronous requests first
RUN_JOB = "restyle.service.worker.run_job"

# Every command is retried when Redis goes away mid-command, so a script whose effect was
# stored but whose reply was lost runs a second time: each one below must give the same answer
# then, and a status change moves the job between the index sets in the same step (a status
# written while its index entry was lost left a running job that no sweep ever saw).

# Update fields of a record only if it still exists (a deleted job must stay deleted); with a
# status, keep the queued, running, finished and per-client sets in step.
# KEYS: the job's hash, queued, running, finished, the client's active set.
# ARGV: the new status ('' for none), the job id, the time, then the fields.
_UPDATE_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
local status, id, now = ARGV[1], ARGV[2], ARGV[3]
if status == '' then return 1 end
if status == 'queued' then
  redis.call('ZADD', KEYS[2], now, id)
  redis.call('SREM', KEYS[3], id)
  return 1
end
redis.call('ZREM', KEYS[2], id)
if status == 'running' then
  redis.call('SADD', KEYS[3], id)
  return 1
end
redis.call('SREM', KEYS[3], id)
redis.call('ZADD', KEYS[4], tonumber(redis.call('HGET', KEYS[1], 'finished_at')) or now, id)
redis.call('SREM', KEYS[5], id)
return 1
"""
# Queued -> running, one more attempt, only if still queued: two workers never run one job.
# The claimant's token is kept, so that the same claim run again (its reply was lost) is
# answered yes instead of leaving a job that says running and that nobody runs.
# KEYS: the job's hash, queued, running. ARGV: the time, the job id, the claimant (JSON).
_CLAIM = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == '"running"' and redis.call('HGET', KEYS[1], 'claimant') == ARGV[3] then
  return 1
end
if status ~= '"queued"' then return 0 end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts')) + 1
redis.call('HSET', KEYS[1], 'status', '"running"', 'attempts', tostring(attempts),
           'started_at', ARGV[1], 'heartbeat_at', ARGV[1], 'message', '"started"',
           'claimant', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""
# Admission: count the client's jobs and the queued jobs, and insert the record, as one step
# (a check and a separate insert let 16 concurrent requests through a limit of 4).
# The job's files, written before, get their full lifetime here: until then they have a short
# one, so the files of a submission that dies half-way (the API killed, Redis lost) expire soon.
# KEYS: the job's hash, the client's active set, the queued zset, then the job's files.
# ARGV: the client limit, the queue limit, the job id, the time, the files' TTL, then the
# record's fields. A record already there is this admission run again (ids are random).
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'ok' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[1]) then return 'client' end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[2]) then return 'queue' end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
for i = 4, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return 'ok'
"""
PENDING_BLOB_TTL_S = 600  # the files of a submission not admitted (yet)
_NO_LIMIT = 2**62


class RedisBackend(Backend):
    mode = "redis"
    unavailable = (redis.ConnectionError, redis.TimeoutError)

    def __init__(self, settings: ServiceSettings, connection: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = connection or redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=10,
            socket_connect_timeout=5,
            health_check_interval=10,
            retry=store_retry(settings.store_retry_s),
        )
        # Readiness must answer at once while Redis is away, not after the retries above.
        self._probe = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(ExponentialBackoff(), 0),
        )
        self.queues = [
            Queue(name, connection=self.redis, serializer=JSONSerializer) for name in QUEUE_NAMES
        ]
        self._update = self.redis.register_script(_UPDATE_IF_EXISTS)
        self._claim = self.redis.register_script(_CLAIM)
        self._admit = self.redis.register_script(_ADMIT)
        # Long enough for the longest job a server admits (a video of max_video_frames).
        longest = settings.job_time_limit(settings.max_video_frames)
        self.blob_ttl = int(settings.result_ttl_s + longest + 3600)

    # Records ---------------------------------------------------------------------------------
    def submit(
        self,
        record: JobRecord,
        blobs: Mapping[str, bytes | Path],
        *,
        max_per_client: int | None = None,
        max_queued: int | None = None,
    ) -> None:
        files = [_blob(record.id, name) for name in blobs]
        with self.redis.pipeline() as pipe:  # the files first: a worker may take the job at once
            for key, data in zip(files, blobs.values(), strict=True):
                # A video's file is read here: its bytes are bounded by `max_video_bytes`.
                value = data.read_bytes() if isinstance(data, Path) else data
                pipe.set(key, value, ex=PENDING_BLOB_TTL_S)  # made longer on admission
            pipe.execute()
        for data in blobs.values():
            if isinstance(data, Path):
                data.unlink(missing_ok=True)
        fields = _encode(record.model_dump(mode="json"))
        # Should Redis fail before the script ran, the files expire by their short TTL.
        verdict = self._admit(
            keys=[_job(record.id), _active(record.client), PREFIX + "queued", *files],
            args=[
                _NO_LIMIT if max_per_client is None else max_per_client,
                _NO_LIMIT if max_queued is None else max_queued,
                record.id,
                json.dumps(time.time()),
                self.blob_ttl,
                *(item for pair in fields.items() for item in pair),
            ],
        )
        if _text(verdict) != "ok":
            self.redis.delete(*files)
            raise JobRefused("client" if _text(verdict) == "client" else "queue")
        self._enqueue(record)

    def _enqueue(self, record: JobRecord) -> None:
        queue = self.queues[0] if record.priority > 0 else self.queues[1]
        queue.enqueue_call(
            RUN_JOB,
            args=(record.id,),
            job_id=f"{record.id}_{record.attempts}",
            timeout=int(self.settings.job_time_limit(record.frames_total)) + 60,
            result_ttl=0,
            failure_ttl=int(self.settings.result_ttl_s),
        )

    def get(self, job_id: str) -> JobRecord | None:
        data = self.redis.hgetall(_job(job_id))
        if not data:
            return None
        return JobRecord.model_validate(_decode(data))

    def claim(self, job_id: str, now: float, *, claimant: str | None = None) -> JobRecord | None:
        """As Backend.claim; `claimant` (a fresh token by default) names this claim: the same
        claimant asking again is answered with the record, as when a reply was lost."""
        token = json.dumps(claimant or secrets.token_hex(8))
        keys = [_job(job_id), PREFIX + "queued", PREFIX + "running"]
        if not self._claim(keys=keys, args=[json.dumps(now), job_id, token]):
            return None
        return self.get(job_id)

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
        status, active = values.get("status", ""), PREFIX + "active:"  # read only with a status
        if status:  # the client's active set is named by its client, which never changes
            client = self.redis.hget(_job(job_id), "client")
            if client is None:
                return None
            active = _active(json.loads(client))
        keys = [_job(job_id), *(PREFIX + k for k in ("queued", "running", "finished")), active]
        if not self._update(keys=keys, args=[status, job_id, json.dumps(time.time()), *argv]):
            return None
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        record = self.get(job_id)
        with self.redis.pipeline() as pipe:
            pipe.delete(_job(job_id), *(_blob(job_id, n) for n in _BLOBS))
            pipe.srem(PREFIX + "running", job_id)
            pipe.zrem(PREFIX + "finished", job_id)
            pipe.zrem(PREFIX + "queued", job_id)
            if record is not None:
                pipe.srem(_active(record.client), job_id)
            pipe.execute()

    def requeue(self, job_id: str) -> None:
        record = self.update(job_id, status=JobStatus.QUEUED, message="retrying")
        if record is not None:
            self._enqueue(record)

    def stranded(self, queued_before: float) -> list[str]:
        waiting = {_text(i) for i in self.redis.zrangebyscore(PREFIX + "queued", 0, queued_before)}
        if not waiting:
            return []
        # Whole queues: at most `max_queued_jobs` ids, read only when something is waiting long.
        in_queues = {rq_id.rsplit("_", 1)[0] for q in self.queues for rq_id in q.get_job_ids()}
        stranded = []
        for job_id in waiting - in_queues:
            record = self.get(job_id)
            if record is None:  # expired or deleted: only its queued entry was left
                self.redis.zrem(PREFIX + "queued", job_id)
            elif record.status == JobStatus.QUEUED:  # not claimed since the queues were read
                stranded.append(job_id)
        return stranded

    def running(self) -> list[JobRecord]:
        records = (self.get(_text(i)) for i in self.redis.smembers(PREFIX + "running"))
        return [r for r in records if r is not None]

    def finished_before(self, timestamp: float) -> list[str]:
        return [_text(i) for i in self.redis.zrangebyscore(PREFIX + "finished", 0, timestamp)]

    def active_count(self, client: str) -> int:
        return int(self.redis.scard(_active(client)))

    def queue_depth(self) -> int:
        # The records waiting, as admission counts them (a dropped synchronous request may
        # still have its entry in an RQ queue, which its worker skips).
        return int(self.redis.zcard(PREFIX + "queued"))

    # Blobs -----------------------------------------------------------------------------------
    def put_blob(self, job_id: str, name: str, data: bytes) -> None:
        self.redis.set(_blob(job_id, name), data, ex=self.blob_ttl)

    def get_blob(self, job_id: str, name: str) -> bytes | None:
        value = self.redis.get(_blob(job_id, name))
        return value if isinstance(value, bytes) else None

    def delete_blob(self, job_id: str, name: str) -> None:
        self.redis.delete(_blob(job_id, name))

    # Personal styles -------------------------------------------------------------------------
    def put_personal(
        self, style: PersonalStyle, files: Mapping[str, bytes], *, most: int | None = None
    ) -> bool:
        owner = _owner(style.owner_sha256)
        for name in files:
            if name not in FILES:
                raise ValueError(f"not a personal style file: {name!r}")
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    # WATCH the owner's set: a style stored meanwhile voids this transaction
                    # and the count is taken again.
                    pipe.watch(owner)  # type: ignore[no-untyped-call]
                    if most is not None:
                        others = [i for i in pipe.zrange(owner, 0, -1) if _text(i) != style.id]
                        if len(others) >= most:
                            pipe.unwatch()
                            return False
                    pipe.multi()  # MULTI/EXEC: all of it or nothing
                    for name, data in files.items():
                        pipe.set(_style_file(style.id, name), data)
                    pipe.set(_style(style.id), style.model_dump_json())
                    pipe.zadd(owner, {style.id: style.created_at})
                    if style.expires_at is not None:
                        pipe.zadd(PREFIX + "styles:expiring", {style.id: style.expires_at})
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    def get_personal(self, style_id: str) -> PersonalStyle | None:
        value = self.redis.get(_style(style_id))
        return PersonalStyle.model_validate_json(value) if value else None

    def personal_of(self, owner_sha256: str) -> list[PersonalStyle]:
        ids = self.redis.zrange(_owner(owner_sha256), 0, -1)
        styles = (self.get_personal(_text(i)) for i in ids)
        return [s for s in styles if s is not None]

    def update_personal(self, style_id: str, **fields: Any) -> PersonalStyle | None:
        style = self.get_personal(style_id)
        if style is None:
            return None
        style = PersonalStyle.model_validate({**style.model_dump(), **fields})
        with self.redis.pipeline() as pipe:
            pipe.set(_style(style_id), style.model_dump_json(), xx=True)
            if style.expires_at is None:
                pipe.zrem(PREFIX + "styles:expiring", style_id)
            else:
                pipe.zadd(PREFIX + "styles:expiring", {style_id: style.expires_at})
            pipe.execute()
        return style

    def delete_personal(self, style_id: str) -> None:
        style = self.get_personal(style_id)
        with self.redis.pipeline() as pipe:
            pipe.delete(_style(style_id), *(_style_file(style_id, n) for n in FILES))
            pipe.zrem(PREFIX + "styles:expiring", style_id)
            if style is not None:
                pipe.zrem(_owner(style.owner_sha256), style_id)
            pipe.execute()

    def personal_file(self, style_id: str, name: str) -> bytes | None:
        if name not in FILES:
            raise ValueError(f"not a personal style file: {name!r}")
        value = self.redis.get(_style_file(style_id, name))
        return value if isinstance(value, bytes) else None

    def personal_expired(self, now: float) -> list[str]:
        return [_text(i) for i in self.redis.zrangebyscore(PREFIX + "styles:expiring", 0, now)]

    def personal_model(self, style: PersonalStyle) -> Path:
        folder = Path(tempfile.gettempdir()) / "restyle-personal-styles"
        path = folder / f"{style.model_sha256}.safetensors"
        if path.is_file():
            with contextlib.suppress(OSError):  # pruned by another process meanwhile: refetch
                os.utime(path)  # recently used: the last to be pruned
                return path
        data = self.personal_file(style.id, "model.safetensors")
        if data is None or hashlib.sha256(data).hexdigest() != style.model_sha256:
            raise FileNotFoundError(f"personal style {style.id}: its network is missing")
        folder.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=".style-", dir=folder)
        with os.fdopen(handle, "wb") as target:
            target.write(data)
        os.replace(partial, path)  # readers never see half a file
        prune_model_cache(folder, keep=MODEL_CACHE_ENTRIES)
        return path

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

    def unready_reason(self) -> str | None:
        try:
            return None if self._probe.ping() else "Redis does not answer"
        except redis.RedisError:
            return "Redis does not answer"

    def stop(self) -> None:
        self.redis.close()
        self._probe.close()


def store_retry(seconds: float) -> Retry:
    """redis-py's retry policy for an outage of about `seconds`: waits from 50 ms doubling to
    1 s, as many as add up to `seconds` (each failed attempt takes its own time on top)."""
    backoff = ExponentialBackoff(cap=1.0, base=0.05)
    retries, waited = 0, 0.0
    while waited < seconds:
        retries += 1
        waited += backoff.compute(retries)
    return Retry(backoff, retries)


_BLOBS = ("content", "style", "preview", "result")


def _job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def _blob(job_id: str, name: str) -> str:
    return f"{PREFIX}blob:{job_id}:{name}"


def _style(style_id: str) -> str:
    return f"{PREFIX}style:{style_id}"


def _style_file(style_id: str, name: str) -> str:
    return f"{PREFIX}style:{style_id}:{name}"


def _owner(owner_sha256: str) -> str:
    return f"{PREFIX}owner:{owner_sha256}"


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


# Personal networks cached per machine (about 1.3 MB each): the least recently used beyond this
# many are removed, so a long-running worker's disk does not fill with styles deleted or expired
# elsewhere. A removed one is fetched from Redis again if it is used again.
MODEL_CACHE_ENTRIES = 64


def prune_model_cache(folder: Path, *, keep: int) -> None:
    """Remove all but the `keep` most recently used networks in `folder` (by modification
    time, which a cache hit renews), and partial files left by a process that died writing."""

    def used_at(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed by another process meanwhile
            return 0.0

    models = sorted(folder.glob("*.safetensors"), key=used_at, reverse=True)
    stale = time.time() - 3600
    partials = [p for p in folder.glob(".style-*") if 0 < used_at(p) < stale]
    for path in [*models[keep:], *partials]:
        path.unlink(missing_ok=True)
