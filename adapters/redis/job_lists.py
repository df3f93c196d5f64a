"""Jobs by state and the history, on Redis (GET /jobs, GET /queue/history).

Each queue's keyspace keeps a sorted set per state, "<tag>:jobs:<state>", of job ids by the time they
entered it (`active` is read from the lease set: its messages by lease deadline), and hashes
"<tag>:history:<hour>" of counts "<minute>:<event>": both written by the scripts that move jobs
(lua/index.lua), in the same step as the record. A list merges the indexes asked (several queues:
several Redis Cluster slots, one sorted set each) newest first, then reads the records of the page;
an index entry whose record has expired (a job type's own retention ends before the index trim) is
removed as it is met, so a list never names a job that GET /jobs/{id} calls unknown.
"""


from redis.exceptions import RedisError

from adapters.redis.client import RedisHandle, unavailable
from adapters.redis.framing import framed_job_id
from adapters.redis.queue_store import QueueStore, decode_record
from functions.jobs import DEFAULT_QUEUE
from functions.listing import decode_cursor, encode_cursor
from functions.models import JobRecord

MAX_ROUNDS = 20  # a page of a rare type ends early (with a cursor) rather than read every index


def index_key(store: QueueStore, state: str) -> str:
    """Where a state's jobs are listed: its index, or for `active` the lease set (lua/index.lua)."""
    if state == "active":
        return store.keys.leases
    return store.keys.job_prefix.removesuffix("job:") + "jobs:" + state


def member_id(member: bytes | str) -> str:
    """An index holds job ids; the lease set, framed messages that start with one."""
    return framed_job_id(member if isinstance(member, bytes) else member.encode())


def history_key(store: QueueStore, hour: int) -> str:
    return store.keys.job_prefix.removesuffix("job:") + f"history:{hour}"


class RedisJobLists:
    def __init__(self, redis: RedisHandle, stores: dict[str, QueueStore], legacy: QueueStore):
        self.redis, self.stores, self.legacy = redis, stores, legacy

    def keyspaces(self, queues: list[str]) -> list[QueueStore]:
        """The `default` queue also has its keyspace from before named queues."""
        return [store for q in queues for store in ([self.stores[q]] + ([self.legacy] if q == DEFAULT_QUEUE else []))]

    def list_jobs(self, states: list[str], queues: list[str], job_type: str | None, limit: int,
                  cursor: str | None) -> tuple[list[JobRecord], str | None]:
        bound = decode_cursor(cursor) if cursor else (float("inf"), "")
        sources = [(store, state) for store in self.keyspaces(queues) for state in states]
        items: list[JobRecord] = []
        try:
            for _ in range(MAX_ROUNDS):
                wanted = limit - len(items)
                candidates, full = self._candidates(sources, bound, wanted + 1)
                if not candidates:
                    return items, None
                page = candidates[:wanted]
                for n, ((score, job_id, store, state), record) in enumerate(zip(page, self._records(page),
                                                                                strict=True)):
                    bound = (score, job_id)
                    if record is None:  # expired before its index entry was trimmed (a lease is the consumer's)
                        if state != "active":
                            self.redis.client.zrem(index_key(store, state), job_id)
                    elif record.state.value == state and (job_type is None or record.type == job_type):
                        items.append(record)
                    if len(items) == limit:
                        more = len(candidates) > n + 1 or full
                        return items, encode_cursor(*bound) if more else None
                if len(candidates) <= len(page) and not full:
                    return items, None  # every index read to its end
            return items, encode_cursor(*bound)
        except RedisError as exc:
            raise unavailable(exc) from None

    def _candidates(self, sources: list[tuple[QueueStore, str]], bound: tuple[float, str],
                    each: int) -> tuple[list[tuple[float, str, QueueStore, str]], bool]:
        """The newest `each` entries of every index after `bound`, merged newest first (ties: by id,
        descending, as Redis orders them); and whether any index had more."""
        pipe = self.redis.client.pipeline(transaction=False)
        score, last_id = bound
        for store, state in sources:
            key = index_key(store, state)
            if score != float("inf"):  # the bound's own score: jobs moved by one script share it (ties by id)
                pipe.zrevrangebyscore(key, repr(score), repr(score))
            pipe.zrevrangebyscore(key, "+inf" if score == float("inf") else f"({score!r}", "-inf", start=0,
                                  num=each + 1, withscores=True)
        results = iter(pipe.execute())
        merged, full = [], False
        for store, state in sources:
            ties = [] if score == float("inf") else next(results)
            after = [(score, m) for m in map(member_id, ties) if m < last_id]
            older = [(s, member_id(m)) for m, s in next(results)]
            full = full or len(older) > each
            merged += [(s, m, store, state) for s, m in (after + older)[:each + len(after)]]
        merged.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
        return merged, full

    def _records(self, page: list[tuple[float, str, QueueStore, str]]) -> list[JobRecord | None]:
        pipe = self.redis.client.pipeline(transaction=False)
        for _, job_id, store, _ in page:
            pipe.hgetall(store.keys.job(job_id))
        return [decode_record(raw) if raw else None for raw in pipe.execute()]

    def history(self, queues: list[str], since: int, until: int, step: int) -> dict[int, dict[str, int]]:
        hours = range(since // 3600, (until - 1) // 3600 + 1)
        try:
            pipe = self.redis.client.pipeline(transaction=False)
            for store in self.keyspaces(queues):
                for hour in hours:
                    pipe.hgetall(history_key(store, hour))
            found = pipe.execute()
        except RedisError as exc:
            raise unavailable(exc) from None
        buckets: dict[int, dict[str, int]] = {}
        for counts in found:
            for field, value in counts.items():
                minute, _, event = (field.decode() if isinstance(field, bytes) else field).partition(":")
                at = int(minute) * 60
                if since <= at < until:
                    bucket = buckets.setdefault(at // step * step, {})
                    bucket[event] = bucket.get(event, 0) + int(value)
        return buckets
