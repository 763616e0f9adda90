"""Job records in Redis, dispatched to `restyle worker` processes by RQ (why RQ:
`redis_backend`; the keys: `redis_keys`). Admission, claims and status changes are Lua scripts,
so each is one step in Redis.

A queued job waits in its lane's zset; RQ's queue of the lane (`restyle-interactive`,
`restyle-heavy`) holds a *ticket* for it: a call of `worker.run_next(lane)`, which takes the
lane's next job in the fair order (`redis_lanes`), not necessarily the one the ticket was made
for. RQ alone would run each queue first in, first out; the tickets let the lanes decide.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from restyle.service.jobs import JobRecord, JobStatus
from restyle.service.lanes import LANES, Lane
from restyle.service.settings import ServiceSettings
from restyle.service.stores import redis_keys as keys
from restyle.service.stores.base import JOB_FILES, JobRefused, JobStore

RUN_NEXT = "restyle.service.worker.run_next"


def queue_name(lane: Lane) -> str:
    """RQ's queue of a lane's tickets."""
    return f"restyle-{lane}"


# Every command is retried when Redis goes away mid-command, so a script whose effect was
# stored but whose reply was lost runs a second time: each one below must give the same answer
# then, and a status change moves the job between the index sets in the same step (a status
# written while its index entry was lost left a running job that no sweep ever saw).

# Update fields of a record only if it still exists (a deleted job must stay deleted); with a
# status, keep the queued, running, finished, per-client and lane sets in step.
# KEYS: the job's hash, queued, running, finished, the client's active set in the job's lane,
# the lane's zset, the lane's clients.
# ARGV: the new status ('' for none), the job id, the time, its order score, its client, then
# the fields.
_UPDATE_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
local status, id, now = ARGV[1], ARGV[2], ARGV[3]
if status == '' then return 1 end
if status == 'queued' then
  redis.call('ZADD', KEYS[2], now, id)
  redis.call('SREM', KEYS[3], id)
  redis.call('ZADD', KEYS[6], ARGV[4], id)
  redis.call('HSET', KEYS[7], id, ARGV[5])
  return 1
end
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[6], id)
redis.call('HDEL', KEYS[7], id)
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
# KEYS: the job's hash, queued, running, its lane's zset and clients.
# ARGV: the time, the job id, the claimant (JSON).
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
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('HDEL', KEYS[5], ARGV[2])
return 1
"""
# Admission: count the client's jobs and the queued jobs, and insert the record, as one step
# (a check and a separate insert let 16 concurrent requests through a limit of 4).
# The job's files, written before, get their full lifetime here: until then they have a short
# one, so the files of a submission that dies half-way (the API killed, Redis lost) expire soon.
# KEYS: the job's hash, the client's active set in the job's lane, the queued zset, the lane's
# zset and clients, then the job's files.
# ARGV: the client limit, the queue limit, the job id, the time, the files' TTL, the order
# score, the client, then the record's fields. A record already there is this admission run
# again (ids are random).
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'ok' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[1]) then return 'client' end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[2]) then return 'queue' end
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[3])
redis.call('HSET', KEYS[5], ARGV[3], ARGV[7])
for i = 6, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return 'ok'
"""
PENDING_BLOB_TTL_S = 600  # the files of a submission not admitted (yet)
_NO_LIMIT = 2**62


class RedisJobStore(JobStore):
    def __init__(
        self, connection: redis.Redis, settings: ServiceSettings, *, blob_ttl: int
    ) -> None:
        self.redis, self.settings, self.blob_ttl = connection, settings, blob_ttl
        self.queues = {
            lane: Queue(queue_name(lane), connection=connection, serializer=JSONSerializer)
            for lane in LANES
        }
        self._update = connection.register_script(_UPDATE_IF_EXISTS)
        self._claim = connection.register_script(_CLAIM)
        self._admit = connection.register_script(_ADMIT)

    def submit(
        self,
        record: JobRecord,
        blobs: Mapping[str, bytes | Path],
        *,
        max_per_client: int | None = None,
        max_queued: int | None = None,
    ) -> None:
        files = [keys.blob(record.id, name) for name in blobs]
        with self.redis.pipeline() as pipe:  # the files first: a worker may take the job at once
            for key, data in zip(files, blobs.values(), strict=True):
                # A video's file is read here: its bytes are bounded by `max_video_bytes`.
                value = data.read_bytes() if isinstance(data, Path) else data
                pipe.set(key, value, ex=PENDING_BLOB_TTL_S)  # made longer on admission
            pipe.execute()
        for data in blobs.values():
            if isinstance(data, Path):
                data.unlink(missing_ok=True)
        fields = keys.encode(record.model_dump(mode="json"))
        # Should Redis fail before the script ran, the files expire by their short TTL.
        verdict = self._admit(
            keys=[
                keys.job(record.id),
                keys.active(record.client, record.lane),
                keys.QUEUED,
                keys.lane(record.lane),
                keys.lane_clients(record.lane),
                *files,
            ],
            args=[
                _NO_LIMIT if max_per_client is None else max_per_client,
                _NO_LIMIT if max_queued is None else max_queued,
                record.id,
                json.dumps(time.time()),
                self.blob_ttl,
                keys.order_score(record.created_at, record.priority),
                record.client,
                *(item for pair in fields.items() for item in pair),
            ],
        )
        if keys.text(verdict) != "ok":
            self.redis.delete(*files)
            raise JobRefused("client" if keys.text(verdict) == "client" else "queue")
        # Should Redis fail before the ticket is written, the sweeper writes one (`restock`).
        self.ticket(record.lane)

    def ticket(self, lane: Lane, count: int = 1) -> None:
        """Tell the lane's workers (through RQ) that `count` more jobs wait in it. A ticket
        may run any job of its lane, so its time limit is the lane's longest job's."""
        longest = self.settings.max_video_frames if lane == "heavy" else 0
        for _ in range(count):
            self.queues[lane].enqueue_call(
                RUN_NEXT,
                args=(lane,),
                timeout=int(self.settings.job_time_limit(longest)) + 60,
                result_ttl=0,
                failure_ttl=int(self.settings.result_ttl_s),
            )

    def get(self, job_id: str) -> JobRecord | None:
        data = self.redis.hgetall(keys.job(job_id))
        if not data:
            return None
        return JobRecord.model_validate(keys.decode(data))

    def claim(
        self, job_id: str, now: float, *, claimant: str | None = None, lane: Lane | None = None
    ) -> JobRecord | None:
        """As JobStore.claim; `claimant` (a fresh token by default) names this claim: the same
        claimant asking again is answered with the record, as when a reply was lost. `lane`:
        the job's, when the caller knows it (else read from the record)."""
        if lane is None:
            stored = self.redis.hget(keys.job(job_id), "lane")
            if stored is None:
                return None
            lane = json.loads(stored)
        assert lane is not None
        token = json.dumps(claimant or secrets.token_hex(8))
        script_keys = [
            keys.job(job_id),
            keys.QUEUED,
            keys.RUNNING,
            keys.lane(lane),
            keys.lane_clients(lane),
        ]
        if not self._claim(keys=script_keys, args=[json.dumps(now), job_id, token]):
            return None
        return self.get(job_id)

    def queued(self, limit: int) -> list[JobRecord]:
        records = []
        for lane in LANES:
            for job_id in self.redis.zrange(keys.lane(lane), 0, limit - 1):
                record = self.get(keys.text(job_id))
                if record is not None and record.status == JobStatus.QUEUED:
                    records.append(record)
        return records[:limit]

    def update(self, job_id: str, **fields: Any) -> JobRecord | None:
        values = JobRecord.model_validate({**_placeholder(job_id), **fields}).model_dump(
            mode="json", include=set(fields)
        )
        argv = [item for pair in keys.encode(values).items() for item in pair]
        status = values.get("status", "")
        client, lane, score = "", "heavy", 0.0  # read only with a status
        if status:  # the sets are named by the client and the lane, which never change
            stored = self.redis.hmget(keys.job(job_id), "client", "lane", "created_at", "priority")
            if stored[0] is None:
                return None
            client, lane = json.loads(stored[0]), json.loads(stored[1] or '"heavy"')
            score = keys.order_score(float(stored[2] or 0), int(stored[3] or 0))
        script_keys = [
            keys.job(job_id),
            keys.QUEUED,
            keys.RUNNING,
            keys.FINISHED,
            keys.active(client, lane),
            keys.lane(lane),
            keys.lane_clients(lane),
        ]
        args = [status, job_id, json.dumps(time.time()), score, client, *argv]
        if not self._update(keys=script_keys, args=args):
            return None
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        record = self.get(job_id)
        with self.redis.pipeline() as pipe:
            pipe.delete(keys.job(job_id), *(keys.blob(job_id, n) for n in JOB_FILES))
            pipe.srem(keys.RUNNING, job_id)
            pipe.zrem(keys.FINISHED, job_id)
            pipe.zrem(keys.QUEUED, job_id)
            if record is not None:
                pipe.srem(keys.active(record.client, record.lane), job_id)
                pipe.zrem(keys.lane(record.lane), job_id)
                pipe.hdel(keys.lane_clients(record.lane), job_id)
            pipe.execute()

    def requeue(self, job_id: str) -> None:
        record = self.update(job_id, status=JobStatus.QUEUED, message="retrying")
        if record is not None:
            self.ticket(record.lane)

    def stranded(self, queued_before: float) -> list[str]:
        waiting = [keys.text(i) for i in self.redis.zrangebyscore(keys.QUEUED, 0, queued_before)]
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in waiting:
                pipe.hmget(keys.job(job_id), "status", "lane")
            states = pipe.execute()
        stranded = []
        for job_id, (status, lane) in zip(waiting, states, strict=True):
            if status is None:  # expired or deleted: only its queued entry was left
                self.redis.zrem(keys.QUEUED, job_id)
            elif json.loads(status) == JobStatus.QUEUED.value and (
                self.redis.zscore(keys.lane(json.loads(lane or '"heavy"')), job_id) is None
            ):  # taken from its lane by a worker that died before it claimed it
                stranded.append(job_id)
        return stranded

    def running(self) -> list[JobRecord]:
        records = (self.get(keys.text(i)) for i in self.redis.smembers(keys.RUNNING))
        return [r for r in records if r is not None]

    def finished_before(self, timestamp: float) -> list[str]:
        return [keys.text(i) for i in self.redis.zrangebyscore(keys.FINISHED, 0, timestamp)]


def _placeholder(job_id: str) -> dict[str, Any]:
    """The least a record needs to validate, so that partial updates can be type-checked."""
    return {"id": job_id, "token_sha256": "", "client": "", "options": {}}
