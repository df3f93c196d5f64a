"""The default DLQ: a hash of entries by job id plus a sorted set by failure time."""

import builtins

from redis.exceptions import RedisError

from adapters.redis import keys, scripts
from adapters.redis.client import RedisHandle, unavailable
from functions.models import DeadJob, DeadJobFilter

MATCH_READ_MAX = 100_000  # most entries one filtered read looks at


class RedisDLQ:
    """The DeadLetterQueue port on Redis. `take` removes and returns in one script: a replay happens once."""

    def __init__(self, redis: RedisHandle):
        self.redis = redis

    def put(self, job: DeadJob) -> None:
        try:
            pipe = self.redis.client.pipeline(transaction=True)
            pipe.hset(keys.DLQ_ENTRIES, job.jobId, job.model_dump_json())
            pipe.zadd(keys.DLQ_ORDER, {job.jobId: job.failedAt})
            pipe.execute()
        except RedisError as exc:
            raise unavailable(exc) from None

    def list(self, offset: int, limit: int) -> list[DeadJob]:
        try:
            ids: list[bytes] = self.redis.client.zrange(keys.DLQ_ORDER, offset, offset + limit - 1)  # type: ignore[assignment]
            raw = self.redis.client.hmget(keys.DLQ_ENTRIES, ids) if ids else []
        except RedisError as exc:
            raise unavailable(exc) from None
        return [DeadJob.model_validate_json(entry) for entry in raw if entry]

    def get(self, job_id: str) -> DeadJob | None:
        try:
            raw = self.redis.client.hget(keys.DLQ_ENTRIES, job_id)
        except RedisError as exc:
            raise unavailable(exc) from None
        return DeadJob.model_validate_json(raw) if raw else None

    def take_many(self, job_ids: builtins.list[str]) -> builtins.list[DeadJob]:
        if not job_ids:
            return []
        try:
            raw = self.redis.run(scripts.DLQ_TAKE, [keys.DLQ_ENTRIES, keys.DLQ_ORDER], list(job_ids))
        except RedisError as exc:
            raise unavailable(exc) from None
        return [DeadJob.model_validate_json(entry) for entry in raw]

    def matching(self, where: DeadJobFilter) -> tuple[builtins.list[DeadJob], bool]:
        """Reads the entries in the failure-time range (the order set's scores), at most
        MATCH_READ_MAX of them; the other fields are matched here."""
        low = where.failedAfter if where.failedAfter is not None else "-inf"
        high = f"({where.failedBefore}" if where.failedBefore is not None else "+inf"
        try:
            ids: builtins.list[bytes] = self.redis.client.zrangebyscore(  # type: ignore[assignment]
                keys.DLQ_ORDER, low, high, start=0, num=MATCH_READ_MAX + 1)
            complete = len(ids) <= MATCH_READ_MAX
            ids = ids[:MATCH_READ_MAX]
            raw = [entry for i in range(0, len(ids), 500)
                   for entry in self.redis.client.hmget(keys.DLQ_ENTRIES, ids[i:i + 500])]
        except RedisError as exc:
            raise unavailable(exc) from None
        entries = (DeadJob.model_validate_json(entry) for entry in raw if entry)
        return [entry for entry in entries if where.matches(entry)], complete

    def count(self) -> int:
        try:
            return int(self.redis.client.hlen(keys.DLQ_ENTRIES))
        except RedisError as exc:
            raise unavailable(exc) from None
