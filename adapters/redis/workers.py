"""Consumer heartbeats in Redis (the WorkerRegistry port): one key per worker with an expiry,
and a sorted set of worker ids by last beat to list them without a SCAN."""

from redis.exceptions import RedisError

from adapters.redis import keys
from adapters.redis.client import RedisHandle, unavailable
from functions.models import WorkerInfo


class RedisWorkerRegistry:
    def __init__(self, redis: RedisHandle):
        self.redis = redis

    def beat(self, worker: WorkerInfo, ttl: float) -> None:
        pipe = self.redis.client.pipeline(transaction=True)
        pipe.set(keys.worker_key(worker.id), worker.model_dump_json(), px=int(ttl * 1000))
        pipe.zadd(keys.WORKERS, {worker.id: worker.lastBeat})
        pipe.execute()

    def leave(self, worker_id: str) -> None:
        pipe = self.redis.client.pipeline(transaction=True)
        pipe.delete(keys.worker_key(worker_id))
        pipe.zrem(keys.WORKERS, worker_id)
        pipe.execute()

    def list(self) -> list[WorkerInfo]:
        """Workers whose beat key has not expired, oldest start first; expired ids are dropped."""
        try:
            ids = [i.decode() for i in self.redis.client.zrange(keys.WORKERS, 0, -1)]  # type: ignore[union-attr]
            raw = self.redis.client.mget([keys.worker_key(i) for i in ids]) if ids else []
            gone = [i for i, entry in zip(ids, raw, strict=True) if entry is None]
            if gone:
                self.redis.client.zrem(keys.WORKERS, *gone)
        except RedisError as exc:
            raise unavailable(exc) from None
        workers = [WorkerInfo.model_validate_json(entry) for entry in raw if entry]
        return sorted(workers, key=lambda w: (w.startedAt, w.id))
