"""The default DLQ: per queue, a hash of entries by job id plus a sorted set by failure time.

Each named queue has its own DLQ keys (with the queue's hash tag); the port's reads merge
them by failure time. The `default` queue's DLQ from before named queues (keys.LEGACY) is
read as part of `default`.
"""

import builtins
import heapq
from collections import defaultdict

from redis.exceptions import RedisError

from adapters.redis import keys, scripts
from adapters.redis.client import RedisHandle, unavailable
from adapters.redis.keys import QueueKeys
from functions.jobs import declared_queues
from functions.models import DeadJob, DeadJobFilter

MATCH_READ_MAX = 100_000  # most entries one filtered read looks at


class RedisDLQ:
    """The DeadLetterQueue port on Redis. `take` removes and returns in one script: a replay happens once."""

    def __init__(self, redis: RedisHandle, queues: list[str] | None = None):
        self.redis = redis
        self.keyspaces = [keys.queue_keys(name) for name in queues or declared_queues()] + [keys.LEGACY]

    def _of(self, queue: str | None) -> list[QueueKeys]:
        return [k for k in self.keyspaces if queue is None or k.queue == queue]

    def put(self, job: DeadJob) -> None:
        k = keys.keys_of(job.jobId)
        try:
            pipe = self.redis.client.pipeline(transaction=True)
            pipe.hset(k.dlq_entries, job.jobId, job.model_dump_json())
            pipe.zadd(k.dlq_order, {job.jobId: job.failedAt})
            pipe.execute()
        except RedisError as exc:
            raise unavailable(exc) from None

    def list(self, offset: int, limit: int) -> list[DeadJob]:
        """The page of every queue's entries merged by failure time: each queue's first offset + limit."""
        try:
            pipe = self.redis.client.pipeline(transaction=False)
            for k in self.keyspaces:
                pipe.zrange(k.dlq_order, 0, offset + limit - 1, withscores=True)
            ranked = pipe.execute()
            page = builtins.list(heapq.merge(*[[(score, i, job_id) for job_id, score in found]
                                               for i, found in enumerate(ranked)]))[offset:offset + limit]
            pipe = self.redis.client.pipeline(transaction=False)
            for _, i, job_id in page:
                pipe.hget(self.keyspaces[i].dlq_entries, job_id)
            raw = pipe.execute() if page else []
        except RedisError as exc:
            raise unavailable(exc) from None
        return [DeadJob.model_validate_json(entry) for entry in raw if entry]

    def get(self, job_id: str) -> DeadJob | None:
        try:
            raw = self.redis.client.hget(keys.keys_of(job_id).dlq_entries, job_id)
        except RedisError as exc:
            raise unavailable(exc) from None
        return DeadJob.model_validate_json(raw) if raw else None

    def take_many(self, job_ids: builtins.list[str]) -> builtins.list[DeadJob]:
        if not job_ids:
            return []
        by_keyspace: dict[QueueKeys, builtins.list[str]] = defaultdict(builtins.list)
        for job_id in job_ids:
            by_keyspace[keys.keys_of(job_id)].append(job_id)
        taken: dict[str, DeadJob] = {}
        try:
            for k, ids in by_keyspace.items():  # one script per queue: each touches one slot
                for entry in self.redis.run(scripts.DLQ_TAKE, [k.dlq_entries, k.dlq_order], ids):
                    dead = DeadJob.model_validate_json(entry)
                    taken[dead.jobId] = dead
        except RedisError as exc:
            raise unavailable(exc) from None
        return [taken[job_id] for job_id in job_ids if job_id in taken]

    def matching(self, where: DeadJobFilter) -> tuple[builtins.list[DeadJob], bool]:
        """Reads the entries in the failure-time range (the order sets' scores) of the queues the
        filter allows, at most MATCH_READ_MAX of them; the other fields are matched here."""
        low = where.failedAfter if where.failedAfter is not None else "-inf"
        high = f"({where.failedBefore}" if where.failedBefore is not None else "+inf"
        found: builtins.list[DeadJob] = []
        complete = True
        try:
            for k in self._of(where.queue):
                ids: builtins.list[bytes] = self.redis.client.zrangebyscore(  # type: ignore[assignment]
                    k.dlq_order, low, high, start=0, num=MATCH_READ_MAX + 1)
                complete = complete and len(ids) <= MATCH_READ_MAX
                ids = ids[:MATCH_READ_MAX]
                found += [DeadJob.model_validate_json(entry) for i in range(0, len(ids), 500)
                          for entry in self.redis.client.hmget(k.dlq_entries, ids[i:i + 500]) if entry]
        except RedisError as exc:
            raise unavailable(exc) from None
        found.sort(key=lambda entry: entry.failedAt)
        return [entry for entry in found if where.matches(entry)][:MATCH_READ_MAX], complete

    def count(self) -> int:
        return sum(self.count_by_queue().values())

    def count_by_queue(self) -> dict[str, int]:
        try:
            pipe = self.redis.client.pipeline(transaction=False)
            for k in self.keyspaces:
                pipe.hlen(k.dlq_entries)
            sizes = pipe.execute()
        except RedisError as exc:
            raise unavailable(exc) from None
        counts: dict[str, int] = defaultdict(int)
        for k, size in zip(self.keyspaces, sizes, strict=True):
            counts[k.queue] += int(size)
        return dict(counts)
