"""The default DLQ: a hash of entries by job id plus a sorted set by failure time."""

from redis.exceptions import RedisError

from adapters import keys
from adapters.job_store import unavailable
from adapters.redis_client import RedisHandle, lua_script
from functions.models import DeadJob

_TAKE = lua_script("""
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return nil end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return entry
""")


class RedisDLQ:
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
            ids = self.redis.client.zrange(keys.DLQ_ORDER, offset, offset + limit - 1)
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
            raw = self.redis.run(_TAKE, [keys.DLQ_ENTRIES, keys.DLQ_ORDER], [job_id])
        except RedisError as exc:
            raise unavailable(exc) from None
        return DeadJob.model_validate_json(raw) if raw else None

    def count(self) -> int:
        try:
            return self.redis.client.hlen(keys.DLQ_ENTRIES)
        except RedisError as exc:
            raise unavailable(exc) from None
