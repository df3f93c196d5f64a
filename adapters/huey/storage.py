"""Huey storage on Redis with a reliable dequeue (at-least-once delivery).

Stock Huey pops a message with BRPOP, so a consumer killed mid-job loses it.
Here a claim atomically moves the message into a lease set (score = lease
deadline) and marks its job record active; the message leaves the lease set
only when Huey has finished with it (completed, rescheduled or dead). Expired
leases (a consumer that died) go back to the head of the queue, and due
retries and delayed jobs move from the schedule to the queue, each onto its
priority's list, in the claim itself (and at the scheduler's tick): a retry
is claimable at its time, and an idle consumer's wait ends then.

Messages are framed as `<job id>\\n<huey message>` (adapters/redis/framing.py)
so that Lua can find the job record of a message it claims. The scripts
themselves live in adapters/redis/lua/.
"""

import collections
import logging
import threading
import time

from huey.storage import RedisStorage
from redis.exceptions import ConnectionError, TimeoutError

from adapters.redis import keys, scripts
from adapters.redis.client import RedisHandle, RedisTarget, redis_outages
from adapters.redis.clock import RedisClock
from adapters.redis.keys import QueueKeys
from adapters.redis.queue_store import schedule_score
from functions.jobs import DEFAULT_QUEUE

log = logging.getLogger("forkline.queue")

OUTAGE_ERRORS = (ConnectionError, TimeoutError, OSError)
RECONNECT_FIRST, RECONNECT_CAP = 0.1, 2.0
# How long a finished job's outcome may wait to share a round trip with others (its lease is held meanwhile,
# so a crash in that window runs it again: at-least-once). 0: every outcome goes with the next claim.
OUTCOME_HOLD = 0.02
# An idle claim waits this much past the next retry's due time: the wait is timed by Redis, the due time read
# on this host's estimate of Redis's clock (off by up to half a round trip).
DUE_MARGIN = 0.01
REDIS_TIMER = 0.1  # the granularity of Redis's blocking timeouts (1 / hz, hz 10 by default)
CLAIMED_FIELDS = 6  # claim.lua's answer per message: message, attempt, max attempts, priority, ready at, trace
Claimed = tuple[bytes, int, int, int, float, bytes]


class LeasedRedisStorage(RedisStorage):
    """RedisStorage whose connection is made lazily per process and whose dequeue leases."""

    def __init__(self, name: str = "forkline", url: RedisTarget | str = "redis://127.0.0.1:6379/0", lease: float = 30.0,
                 read_timeout: float = 1.0, queue_keys: QueueKeys | None = None, **_: object):
        # Deliberately no super().__init__(): it would open a pool at import time.
        self.name = name
        self.keys = queue_keys or keys.queue_keys(DEFAULT_QUEUE)
        self.queue_key = self.keys.list
        self.schedule_key = self.keys.schedule
        self.result_key = f"huey.results.{name}"
        self.counter_key = f"huey.counters.{name}"
        self.notify_prefix = f"huey.notify.{name}."
        self.notify_result = False
        self.notify_result_ttl = 60
        self.blocking = True
        self.read_timeout = read_timeout
        self.lease = lease
        self.redis = RedisHandle(url, socket_timeout=read_timeout + 5)
        self.clock = RedisClock(self.redis)  # leases and schedule scores are on Redis's clock
        self.batch = 1
        self.retention = 86400
        self._held: set[bytes] = set()
        self._held_lock = threading.Lock()
        self._reconnect_delay = RECONNECT_FIRST
        self._claimed: collections.deque = collections.deque()
        self._completed: list[tuple[str, str, bytes]] = []
        self._completed_since = 0.0  # when the oldest of them finished (monotonic)
        self.hold = OUTCOME_HOLD
        self._claim_lock = threading.Lock()
        self.paused = False  # as the last claim found the queue
        self.priority_aging = 10.0

    def configure(self, url: RedisTarget | str, lease: float, batch: int = 1, retention: int = 86400,
                  priority_aging: float = 10.0) -> None:
        """`batch`: messages claimed per round trip (one per worker thread is enough); `priority_aging`:
        seconds of waiting worth one priority level."""
        self.priority_aging = priority_aging
        self.redis = RedisHandle(url, socket_timeout=self.read_timeout + 5)
        self.clock = RedisClock(self.redis)
        self.lease = lease
        self.batch = batch
        self.hold = OUTCOME_HOLD
        self.retention = retention
        self._claimed.clear()
        self._completed.clear()
        self._held.clear()

    @property
    def conn(self):  # Huey's own methods use self.conn
        return self.redis.client

    def close(self) -> None:
        self.redis.close()

    # Reliable dequeue.

    def claim(self) -> Claimed | None:
        """Lease the next message; return it, the attempt it starts, its job's max attempts (0: unknown),
        its priority, when it became claimable (JobRecord.ready_at; 0: unknown) and its trace context
        (b"<traceparent>\n<tracestate>", or b"").

        Messages are claimed `batch` at a time into a local buffer (they are
        leased and renewed while they wait there), and completions recorded by
        `complete()` ride along on the same round trip.
        """
        claimed = self._next_claimed()
        if claimed is None and not self.paused:
            self._wait_for_work()  # the claim after the wait moves what has come due
            claimed = self._next_claimed()
        return claimed

    def _wait_for_work(self) -> None:
        """Until a message arrives (BLMOVE: a no-op move of the tail onto itself, so nothing is taken),
        read_timeout passes, or the schedule's next entry is due. Redis times a blocking wait to its own
        timer (100 ms at the default hz 10), so the end of a wait for a due time is slept here."""
        due_in = self.due_in()
        if due_in is None:
            self.conn.blmove(self.queue_key, self.queue_key, self.read_timeout, "RIGHT", "RIGHT")
            return
        started = time.monotonic()
        if due_in > REDIS_TIMER + 0.01 and self.conn.blmove(self.queue_key, self.queue_key, due_in - REDIS_TIMER,
                                                            "RIGHT", "RIGHT") is not None:
            return  # a message came first
        time.sleep(max(0.0, due_in - (time.monotonic() - started)))

    def due_in(self) -> float | None:
        """Seconds until the schedule's next entry is due (and DUE_MARGIN more, so that the claim after
        the wait finds it due on this host's reading of Redis's clock); None when that is read_timeout
        or more away."""
        first = self.conn.zrange(self.keys.schedule, 0, 0, withscores=True)
        if not first:
            return None
        due_in = max(first[0][1] - schedule_score(self.clock()) + DUE_MARGIN, 0.0)
        return due_in if due_in < self.read_timeout else None

    def _next_claimed(self) -> Claimed | None:
        with self._claim_lock:
            # Outcomes ride on a claim: the one that refills an empty buffer, or the first once `batch` of
            # them wait or the oldest has waited `hold` s (flush_due() sees to that while no thread claims).
            if not self._claimed or self._outcomes_due(len(self._completed) >= self.batch):
                self._round_trip(max(self.batch - len(self._claimed), 0))
            return self._claimed.popleft() if self._claimed else None

    def _outcomes_due(self, full: bool = False) -> bool:
        return bool(self._completed) and (full or time.monotonic() - self._completed_since >= self.hold)

    def _round_trip(self, wanted: int) -> None:
        completed, self._completed = self._completed, []
        now = self.clock()
        args: list = [now, self.lease, self.keys.job_prefix, wanted, self.retention, self.priority_aging,
                      schedule_score(now)]
        for job_id, result, lease in completed:
            args += (job_id, result, lease)
        k = self.keys
        try:
            found = self.redis.run(scripts.CLAIM, [k.list, k.leases, k.stats, k.paused, k.priorities, k.schedule], args)
        except BaseException:
            self._completed[:0] = completed  # recorded on the next round trip; the leases are still renewed
            raise
        self.paused = found == 0  # the worker's poll backs off (Huey's worker: up to max_delay) while paused
        found = found or []
        with self._held_lock:
            for _, _, lease in completed:
                self._held.discard(lease)
            for i in range(0, len(found), CLAIMED_FIELDS):
                self._held.add(found[i])
        for i in range(0, len(found), CLAIMED_FIELDS):
            data, attempt, max_attempts, priority, ready_at, trace = found[i:i + CLAIMED_FIELDS]
            self._claimed.append((data, int(attempt), int(max_attempts), int(priority), float(ready_at), trace))

    def complete(self, job_id: str, result: str, lease: bytes) -> None:
        """Record a completed job with a coming claim, within `hold` seconds (its lease is held until then)."""
        with self._claim_lock:
            if not self._completed:
                self._completed_since = time.monotonic()
            self._completed.append((job_id, result, lease))

    def flush(self) -> None:
        """Record pending completions now (at shutdown)."""
        with self._claim_lock:
            if self._completed:
                self._round_trip(0)

    def flush_due(self) -> None:
        """Record the completions that have waited `hold` seconds (called every `hold` s by the consumer)."""
        with self._claim_lock:
            if self._outcomes_due():
                self._round_trip(0)

    def claim_or_wait(self) -> Claimed | None:
        """claim(), but while Redis is unreachable: None after a capped, growing pause.

        Huey's worker would log every failed poll; the outage is logged once instead.
        """
        try:
            claimed = self.claim()
        except OUTAGE_ERRORS as exc:
            redis_outages.failed(exc)
            delay = self._reconnect_delay
            self._reconnect_delay = min(delay * 2, RECONNECT_CAP)
            time.sleep(delay)
            return None
        redis_outages.succeeded()
        self._reconnect_delay = RECONNECT_FIRST
        return claimed

    def dequeue(self) -> bytes | None:
        claimed = self.claim_or_wait()
        return claimed[0] if claimed else None

    def forget(self, data: bytes) -> None:
        """Stop renewing a message's lease (its outcome was not recorded): the reaper re-queues it."""
        with self._held_lock:
            self._held.discard(data)

    def ack(self, data: bytes) -> None:
        """Huey is done with this message (rescheduled or dead): drop the lease.

        If the removal fails, the lease expires and the copy is re-queued: a
        finished job's copy is then dropped at its claim.
        """
        self.forget(data)
        self.conn.zrem(self.keys.leases, data)

    def retry(self, job_id: str, message: bytes, error: str, at: float, now: float) -> None:
        """A failed attempt with retries left: its record says when the next one is due (`at`, Redis's
        clock), and the message waits in the schedule until then instead of its lease."""
        self.forget(message)
        self.redis.run(scripts.RETRY, [self.keys.job(job_id), self.keys.leases, self.keys.schedule],
                       [message, schedule_score(at), error, at, now])

    def renew_leases(self) -> int:
        """Push the deadline of every message this process holds; call more often than the lease."""
        with self._held_lock:
            held = list(self._held)
        if not held:
            return 0
        deadline = self.clock() + self.lease
        self.conn.zadd(self.keys.leases, {data: deadline for data in held}, xx=True)
        return len(held)

    def release_held(self) -> int:
        """Give back every message still held (on shutdown), claimed but not started ones too."""
        with self._claim_lock:
            self._claimed.clear()
        with self._held_lock:
            held, self._held = list(self._held), set()
        released = 0
        for data in held:
            released += self.redis.run(scripts.RELEASE, [self.keys.leases, self.queue_key, self.keys.priorities],
                                       [data, self.keys.job_prefix])
        return released

    def read_schedule(self, ts) -> list:
        try:
            k = self.keys
            expired, due = self.redis.run(scripts.REAP, [self.queue_key, k.leases, self.schedule_key, k.priorities],
                                          [self.clock(), self.convert_ts(ts), k.job_prefix, self.retention])
        except OUTAGE_ERRORS as exc:
            redis_outages.failed(exc)  # the scheduler tries again next second
            return []
        if expired:
            log.warning("re-queued %d job(s) whose consumer stopped renewing its lease", expired,
                        extra={"event": "lease_expired", "count": expired})
        return []  # already moved to the queue atomically

    def leased_count(self) -> int:
        return self.conn.zcard(self.keys.leases)
