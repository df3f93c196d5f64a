"""The default DLQ: a hash of entries by job id plus a sorted set by failure time."""

from redis.exceptions import RedisError

from adapters.redis import keys, scripts
from adapters.redis.client import RedisHandle, unavailable
from functions.models import DeadJob


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

    def take(self, job_id: str) -> DeadJob | None:
        try:
            raw = self.redis.run(scripts.DLQ_TAKE, [keys.DLQ_ENTRIES, keys.DLQ_ORDER], [job_id])
        except RedisError as exc:
            raise unavailable(exc) from None
        return DeadJob.model_validate_json(raw) if raw else None

    def count(self) -> int:
        try:
            return int(self.redis.client.hlen(keys.DLQ_ENTRIES))
        except RedisError as exc:
            raise unavailable(exc) from None
