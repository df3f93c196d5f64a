"""Job records, counters and the enqueue path in Redis (the JobQueue port).

A job record is a hash `forkline:job:<id>`. Counters of finished jobs live in
`forkline:stats`; waiting/active/delayed are read from the structures
themselves (queue list, lease set, schedule set), so they cannot drift.
"""

import json
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from redis.exceptions import RedisError

from adapters.redis import keys, scripts
from adapters.redis.client import RedisHandle, redis_outages, unavailable
from functions.models import JobRecord

_INT_FIELDS = {"attempts", "maxAttempts"}
_FLOAT_FIELDS = {"createdAt", "updatedAt", "nextAttemptAt", "finishedAt"}
_JSON_FIELDS = {"payload", "result"}


def encode_record(job: JobRecord) -> list[str]:
    """The record as HSET arguments [name, value, ...]; unset fields are left out (read back as None)."""
    fields: list[str] = []
    for name in JobRecord.model_fields:
        value = getattr(job, name)
        if value is None:
            continue
        if name in _JSON_FIELDS:
            value = json.dumps(value)
        elif isinstance(value, Enum):
            value = value.value
        fields += (name, value if isinstance(value, str) else str(value))
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
        elif name in _INT_FIELDS:
            data[name] = int(text)
        elif name in _FLOAT_FIELDS:
            data[name] = float(text)
        elif name in JobRecord.model_fields:
            data[name] = text
    return JobRecord.model_validate(data)


class RedisJobQueue:
    """JobQueue port on Redis. `encode` turns a job into its queue message (framed, see scripts.py)."""

    def __init__(self, redis: RedisHandle, encode: Callable[[JobRecord], bytes], retention: int):
        self.redis = redis
        self.encode = encode
        self.retention = retention

    def _store(self, job: JobRecord, replace: bool, once: tuple[str, str] | None = None) -> tuple[str, str] | None:
        fields = encode_record(job)
        script_keys = [keys.job_key(job.id), keys.QUEUE]
        held_value = ""
        if once is not None:
            script_keys.append(keys.idempotency_key(once[0]))
            held_value = f"{job.id} {once[1]}"
        try:
            held = self.redis.run(scripts.SUBMIT, script_keys,
                                  [self.encode(job), "1" if replace else "0", held_value, self.retention, *fields])
        except RedisError as exc:
            raise unavailable(exc) from None
        redis_outages.succeeded()
        if isinstance(held, bytes):
            job_id, _, fingerprint = held.decode().partition(" ")
            return job_id, fingerprint
        return None

    def submit(self, job: JobRecord, once: tuple[str, str] | None = None) -> tuple[str, str] | None:
        """Idempotency keys are kept for JOB_RETENTION seconds."""
        return self._store(job, replace=False, once=once)

    def requeue(self, job: JobRecord) -> None:
        """Replace the job's record (attempts reset) and enqueue it again."""
        self._store(job, replace=True)

    def get(self, job_id: str) -> JobRecord | None:
        try:
            raw = self.redis.client.hgetall(keys.job_key(job_id))
        except RedisError as exc:
            raise unavailable(exc) from None
        return decode_record(raw) if raw else None

    def counts(self) -> dict[str, int]:
        try:
            pipe = self.redis.client.pipeline(transaction=False)
            pipe.llen(keys.QUEUE)
            pipe.zcard(keys.LEASES)
            pipe.zcard(keys.SCHEDULE)
            pipe.hmget(keys.STATS, "completed", "failed")
            waiting, active, delayed, (completed, failed) = pipe.execute()
        except RedisError as exc:
            raise unavailable(exc) from None
        return {
            "waiting": waiting,
            "active": active,
            "completed": int(completed or 0),
            "failed": int(failed or 0),
            "delayed": delayed,
        }

    # Consumer-side transitions (completions are recorded by the consumer's claim script).

    def mark_dead(self, job_id: str, error: str, now: float) -> bool:
        # Dead records stay while their DLQ entry exists; a replay rewrites them.
        done = self.redis.run(scripts.FINISH_JOB, [keys.job_key(job_id), keys.STATS, keys.LEASES],
                              ["dead", "lastError", error, now, "failed", 0, ""])
        return bool(done)

    def mark_retrying(self, job_id: str, error: str, next_attempt_at: float, now: float) -> None:
        self.redis.client.hset(
            keys.job_key(job_id),
            mapping={"state": "retrying", "lastError": error, "nextAttemptAt": next_attempt_at, "updatedAt": now},
        )
