"""One queue's keyspace in Redis: its records, its enqueue path and the consumer's transitions.

A job record is a hash under the queue's job prefix (adapters/redis/keys.py). Counters of
finished jobs live in the queue's stats hash; waiting/active/delayed are read from the
structures themselves (queue list, lease set, schedule set), so they cannot drift.
"""

import datetime
import json
import time
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from redis.client import Pipeline
from redis.exceptions import RedisError

from adapters.redis import scripts
from adapters.redis.client import RedisHandle, redis_outages, unavailable
from adapters.redis.keys import QueueKeys
from functions.jobs import DEFAULT_PRIORITY
from functions.models import DeadJob, JobRecord, JobState

_INT_FIELDS = {"attempts", "maxAttempts", "replays", "priority", "retention", "promotions"}
_FLOAT_FIELDS = {"createdAt", "updatedAt", "nextAttemptAt", "finishedAt", "runAt", "progress"}
_JSON_FIELDS = {"payload", "result", "errors"}
_FLAG_FIELDS = {"dlqPending"}  # stored as "1" only while true
# Left out at these values (most jobs: fewer hash fields); a flag is stored as "1" only while true.
_OMITTED_AT: dict[str, object] = {"replays": 0, "priority": DEFAULT_PRIORITY, "promotions": 0, "errors": [],
                                  **dict.fromkeys(_FLAG_FIELDS, False)}
_NEVER = object()
COUNTED = ("waiting", "active", "delayed", "completed", "failed", "dlqPending", "paused")
OTHER_PRIORITIES = [p for p in range(10) if p != DEFAULT_PRIORITY]


def schedule_score(run_at: float) -> float:
    """A Unix time as Huey's schedule scores it (its UTC datetime through `time.mktime`, as
    RedisStorage.convert_ts does), so the scheduler's due read moves it at its time."""
    moment = datetime.datetime.fromtimestamp(run_at, datetime.UTC).replace(tzinfo=None)
    return time.mktime(moment.timetuple()) + moment.microsecond * 1e-6


def encode_record(job: JobRecord) -> list[str]:
    """The record as HSET arguments [name, value, ...]; unset fields are left out (read back as None)."""
    fields: list[str] = []
    for name, value in job.__dict__.items():  # the fields, in order, without pydantic's attribute lookup
        if value is None or _OMITTED_AT.get(name, _NEVER) == value:
            continue
        if name == "errors":
            value = json.dumps([e.model_dump() for e in value])
        elif name in _JSON_FIELDS:
            value = json.dumps(value)
        elif name in _FLAG_FIELDS:
            value = "1"
        elif type(value) is not str:
            value = value.value if isinstance(value, Enum) else str(value)
        fields += (name, value)
    return fields


def decode_record(raw: Mapping[bytes | str, bytes | str]) -> JobRecord:
    data: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else key
        text = value.decode() if isinstance(value, bytes) else value
        if name in _JSON_FIELDS:
            data[name] = json.loads(text) if text else None
        elif text == "":
            data[name] = None
        elif name in _FLAG_FIELDS:
            data[name] = text == "1"
        elif name in _INT_FIELDS:
            data[name] = int(text)
        elif name in _FLOAT_FIELDS:
            data[name] = float(text)
        elif name in JobRecord.model_fields:
            data[name] = text
    return JobRecord.model_validate(data)


class QueueStore:
    """The records and messages of one queue (one keyspace). `encode` turns a job into its queue
    message (framed, see scripts.py). Every script call touches this keyspace's keys only."""

    def __init__(self, redis: RedisHandle, keys: QueueKeys, encode: Callable[[JobRecord], bytes], retention: int):
        self.redis, self.keys, self.encode, self.retention = redis, keys, encode, retention

    def store(self, job: JobRecord, replace: bool, once: tuple[str, str] | None = None) -> tuple[str, str] | None:
        fields = encode_record(job)
        scheduled = job.state == JobState.scheduled and job.runAt is not None
        target = self.keys.schedule if scheduled else self.keys.priority_list(job.priority)
        script_keys = [self.keys.job(job.id), target, self.keys.priorities]
        score = repr(schedule_score(job.runAt)) if scheduled and job.runAt is not None else ""
        priority = "" if scheduled or job.priority == DEFAULT_PRIORITY else str(job.priority)
        held_value = ""
        if once is not None:
            script_keys.append(self.keys.idempotency(once[0]))
            held_value = f"{job.id} {once[1]}"
        try:
            held = self.redis.run_acknowledged(scripts.SUBMIT, script_keys,
                                  [self.encode(job), "1" if replace else "0", held_value,
                                   job.retention or self.retention, score,
                                   priority, *fields])
        except RedisError as exc:
            raise unavailable(exc) from None
        redis_outages.succeeded()
        if isinstance(held, bytes):
            job_id, _, fingerprint = held.decode().partition(" ")
            return job_id, fingerprint
        return None

    def cancel(self, job_id: str, now: float) -> JobState | None:
        try:
            found = self.redis.run_acknowledged(scripts.CANCEL, [self.keys.job(job_id)], [now, self.retention])
        except RedisError as exc:
            raise unavailable(exc) from None
        return JobState(found.decode() if isinstance(found, bytes) else found) if found else None

    def promote(self, job_id: str, now: float) -> tuple[JobState | None, bool]:
        k = self.keys
        try:
            found, promoted = self.redis.run_acknowledged(scripts.PROMOTE, [k.job(job_id), k.schedule, k.list,
                                                                            k.priorities], [now])
        except RedisError as exc:
            raise unavailable(exc) from None
        state = found.decode() if isinstance(found, bytes) else found
        return (JobState(state) if state else None), bool(promoted)

    def oldest_waiting(self, now: float) -> float | None:
        """When the oldest waiting job became claimable (lua/oldest.lua); None when none waits."""
        k = self.keys
        try:
            found = self.redis.run(scripts.OLDEST, [k.list, k.priorities, k.schedule],
                                   [k.job_prefix, schedule_score(now)])
        except RedisError as exc:
            raise unavailable(exc) from None
        return float(found) if found else None

    def progress(self, job_id: str, fraction: float, note: str) -> None:
        try:
            self.redis.run(scripts.PROGRESS, [self.keys.job(job_id)], [repr(fraction), note])
        except RedisError as exc:
            raise unavailable(exc) from None

    def forget(self, job_id: str) -> JobState | None:
        try:
            found = self.redis.run(scripts.FORGET, [self.keys.job(job_id)], [])
        except RedisError as exc:
            raise unavailable(exc) from None
        return JobState(found.decode() if isinstance(found, bytes) else found) if found else None

    def get(self, job_id: str) -> JobRecord | None:
        try:
            raw = self.redis.client.hgetall(self.keys.job(job_id))
        except RedisError as exc:
            raise unavailable(exc) from None
        return decode_record(raw) if raw else None

    def read_counts(self, pipe: Pipeline) -> Callable[[list[Any]], dict[str, int]]:
        """Queue this keyspace's counts on `pipe`; the returned function reads them from its results."""
        for command, key in (("llen", self.keys.list), ("zcard", self.keys.leases), ("zcard", self.keys.schedule)):
            getattr(pipe, command)(key)
        pipe.hmget(self.keys.stats, "completed", "failed")
        pipe.zcard(self.keys.dlq_pending)
        pipe.exists(self.keys.paused)
        for priority in OTHER_PRIORITIES:
            pipe.llen(self.keys.priority_list(priority))

        def read(results: list[Any]) -> dict[str, int]:
            waiting, active, delayed, (completed, failed), dlq_pending, paused = results[:6]
            waiting += sum(results[6:6 + len(OTHER_PRIORITIES)])
            del results[:6 + len(OTHER_PRIORITIES)]
            return dict(zip(COUNTED, (waiting, active, delayed, int(completed or 0), int(failed or 0), dlq_pending,
                                      int(paused)), strict=True))
        return read

    def set_paused(self, paused: bool) -> None:
        try:
            if paused:
                self.redis.client.set(self.keys.paused, "1")
            else:
                self.redis.client.delete(self.keys.paused)
        except RedisError as exc:
            raise unavailable(exc) from None

    # Consumer-side transitions (completions are recorded by the consumer's claim script).

    def mark_dead(self, entry: DeadJob, lease: bytes, retry_at: float) -> bool:
        """Mark the job dead, drop its lease and keep its DLQ entry pending (for other consumers
        from `retry_at`), in one script. False when the job had already finished (nothing to put)."""
        # Dead records stay while their DLQ entry exists; a replay rewrites them.
        k = self.keys
        done = self.redis.run(scripts.BURY, [k.job(entry.jobId), k.stats, k.leases, k.dlq_pending],
                              [entry.jobId, entry.error, entry.failedAt, entry.model_dump_json(), lease, retry_at])
        return bool(done)

    def take_pending_dead(self, now: float, hold: float, limit: int = 10) -> list[DeadJob]:
        """DLQ entries due for a put, held for `hold` seconds from other consumers."""
        k = self.keys
        raw = self.redis.run(scripts.DLQ_PENDING_TAKE, [k.dlq_pending], [now, hold, limit, k.job_prefix])
        return [DeadJob.model_validate_json(entry) for entry in raw]

    def postpone_pending_dead(self, job_id: str, until: float) -> None:
        self.redis.client.zadd(self.keys.dlq_pending, {job_id: until}, xx=True)

    def dlq_delivered(self, job_id: str) -> None:
        """The job's DLQ entry is in the DLQ: it is no longer pending."""
        pipe = self.redis.client.pipeline(transaction=True)
        pipe.hdel(self.keys.job(job_id), "dlqPending", "dlqEntry")
        pipe.zrem(self.keys.dlq_pending, job_id)
        pipe.execute()

