"""The JobQueue port on Redis, over every named queue (one QueueStore per queue's keyspace).

Each call goes to the keyspace the job's id names (adapters/redis/keys.py). The `default`
queue also reads its keyspace from before named queues (keys.LEGACY): jobs enqueued by
old processes during a rolling deploy are found, counted and cancelled like the others.
"""

from collections.abc import Callable

from redis.exceptions import RedisError

from adapters.redis import keys
from adapters.redis.client import RedisHandle, unavailable
from adapters.redis.job_lists import RedisJobLists
from adapters.redis.keys import QueueKeys
from adapters.redis.queue_store import COUNTED, QueueStore
from functions.errors import NotFound
from functions.jobs import DEFAULT_QUEUE, declared_queues
from functions.models import JobRecord, JobState


class RedisJobQueue:
    """`encode(job, keys)` turns a job into the queue message its keyspace's format says."""

    def __init__(self, redis: RedisHandle, encode: Callable[[JobRecord, QueueKeys], bytes], retention: int,
                 queues: list[str] | None = None):
        self.redis = redis
        self.retention = retention
        self.queues = queues or declared_queues()
        self.stores = {name: self._store_of(keys.queue_keys(name), encode) for name in self.queues}
        self.legacy = self._store_of(keys.LEGACY, encode)
        self.lists = RedisJobLists(redis, self.stores, self.legacy)

    def _store_of(self, queue_keys: QueueKeys, encode: Callable[[JobRecord, QueueKeys], bytes]) -> QueueStore:
        return QueueStore(self.redis, queue_keys, lambda job: encode(job, queue_keys), self.retention)

    def store_for(self, job_id: str) -> QueueStore:
        """The keyspace of a job; NotFound when its id names a queue that is not declared."""
        queue_keys = keys.keys_of(job_id)
        if queue_keys is keys.LEGACY:
            return self.legacy
        store = self.stores.get(queue_keys.queue)
        if store is None:
            raise NotFound(f"No job with id {job_id!r}")
        return store

    def submit(self, job: JobRecord, once: tuple[str, str] | None = None) -> tuple[str, str] | None:
        """Idempotency keys are kept for JOB_RETENTION seconds, per queue."""
        return self.store_for(job.id).store(job, replace=False, once=once)

    def requeue(self, job: JobRecord) -> None:
        """Replace the job's record (attempts reset) and enqueue it again, in the queue its id names."""
        self.store_for(job.id).store(job, replace=True)

    def cancel(self, job_id: str, now: float) -> JobState | None:
        """Cancelled records are kept JOB_RETENTION seconds, like completed ones."""
        return self.store_for(job_id).cancel(job_id, now)

    def promote(self, job_id: str, now: float) -> tuple[JobState | None, bool]:
        return self.store_for(job_id).promote(job_id, now)

    def list_jobs(self, states: list[str], queues: list[str], job_type: str | None, limit: int,
                  cursor: str | None) -> tuple[list[JobRecord], str | None]:
        return self.lists.list_jobs(states, queues, job_type, limit, cursor)

    def history(self, queues: list[str], since: int, until: int, step: int) -> dict[int, dict[str, int]]:
        return self.lists.history(queues, since, until, step)

    def oldest_waiting(self, now: float) -> dict[str, float]:
        found = {name: store.oldest_waiting(now) for name, store in self.stores.items()}
        return {name: ready for name, ready in found.items() if ready is not None}

    def forget(self, job_id: str) -> JobState | None:
        return self.store_for(job_id).forget(job_id)

    def get(self, job_id: str) -> JobRecord | None:
        try:
            store = self.store_for(job_id)
        except NotFound:
            return None
        return store.get(job_id)

    def pause(self, queue: str, paused: bool) -> None:
        """Pausing `default` pauses its keyspace from before named queues too."""
        self.stores[queue].set_paused(paused)
        if queue == DEFAULT_QUEUE:
            self.legacy.set_paused(paused)

    def counts(self) -> dict[str, dict[str, int]]:
        """One round trip for every queue; the legacy keyspace's figures are added to `default`'s."""
        try:
            pipe = self.redis.client.pipeline(transaction=False)
            readers = {name: store.read_counts(pipe) for name, store in self.stores.items()}
            legacy = self.legacy.read_counts(pipe)
            results = pipe.execute()
        except RedisError as exc:
            raise unavailable(exc) from None
        counts = {name: read(results) for name, read in readers.items()}
        old = legacy(results)
        if DEFAULT_QUEUE in counts:
            default = counts[DEFAULT_QUEUE]
            for name in COUNTED:
                if name != "paused":
                    default[name] += old[name]
        return counts
