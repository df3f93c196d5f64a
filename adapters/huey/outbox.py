"""Dead jobs on their way to the DLQ: a DLQ that fails a put never loses a job's error
and never keeps its lease.

`bury` runs one script that marks the job dead, drops its lease and keeps the DLQ
entry (error, traceback, attempts) in the job's record, marked `dlqPending`; then it
puts the entry in the DLQ and clears the mark. When the put fails, the entry stays
pending in Redis and `retry` (run by every consumer, with a capped backoff, without
limit) puts it later; the job is never run again for it. When Redis itself cannot
record the death, the entry waits in this process, its lease still held and renewed,
and `retry` records it once Redis answers; if this consumer dies meanwhile, the lease
expires and the job is buried at its next claim as lost.

A put whose confirmation cannot be recorded is put again: on the Redis DLQ that
rewrites the same entry, on SQS it can leave a duplicate message.
"""

import logging
import threading

from adapters.huey.storage import LeasedRedisStorage
from adapters.logs import FastLogger
from adapters.redis.queue_store import QueueStore
from functions.models import DeadJob
from functions.ports import DeadLetterQueue

log = logging.getLogger("forkline.queue")
jobs_log = FastLogger("forkline.jobs")

HOLD = 60.0  # seconds a consumer holds a pending entry while it puts it
FIRST_RETRY = 1.0  # seconds before the first retry of a failed put


class DeadLetterOutbox:
    def __init__(self, jobs: QueueStore, dlq: DeadLetterQueue, storage: LeasedRedisStorage):
        self.jobs, self.dlq, self.storage = jobs, dlq, storage
        self._unrecorded: dict[str, tuple[DeadJob, bytes]] = {}  # job id -> (entry, lease)
        self._lock = threading.Lock()

    def bury(self, entry: DeadJob, lease: bytes) -> bool:
        """True when the death is recorded (lease dropped); False: held here, its lease renewed, until it is."""
        if not self._record(entry, lease):
            with self._lock:
                self._unrecorded[entry.jobId] = (entry, lease)
            return False
        return True

    def _record(self, entry: DeadJob, lease: bytes) -> bool:
        try:
            dead = self.jobs.mark_dead(entry, lease, retry_at=self.storage.clock() + HOLD)  # this thread puts it first
        except Exception as exc:
            log.warning("could not record job %s as dead (%s); it stays held and is tried again", entry.jobId, exc,
                        extra={"event": "dead_unrecorded", "jobId": entry.jobId})
            return False
        self.storage.forget(lease)  # the script dropped the lease
        if dead:
            jobs_log.warning(f"job {entry.jobId} is dead after {entry.attempts} attempts", event="job_dead",
                             jobId=entry.jobId, type=entry.type, attempts=entry.attempts, error=entry.error)
            if not self.deliver(entry):
                self._postpone(entry.jobId, FIRST_RETRY)
        return True

    def deliver(self, entry: DeadJob) -> bool:
        """Put a recorded dead job's entry in the DLQ; False if the put failed (it stays pending)."""
        try:
            self.dlq.put(entry)
        except Exception as exc:
            log.warning("could not put job %s in the DLQ (%s); it is dead with dlqPending and the put is retried",
                        entry.jobId, exc, extra={"event": "dlq_put_failed", "jobId": entry.jobId})
            return False
        try:
            self.jobs.dlq_delivered(entry.jobId)
        except Exception:
            log.warning("job %s is in the DLQ but still marked pending; it will be put again", entry.jobId,
                        extra={"event": "dlq_unconfirmed", "jobId": entry.jobId})
        return True

    def _postpone(self, job_id: str, seconds: float) -> None:
        try:
            self.jobs.postpone_pending_dead(job_id, self.storage.clock() + seconds)
        except Exception:
            pass  # it stays held for HOLD seconds, then any consumer tries again

    def held(self) -> int:
        with self._lock:
            return len(self._unrecorded)

    def retry(self, postpone: float) -> bool:
        """Record the deaths held here, then put the pending entries that are due; entries
        that fail again wait `postpone` seconds. True when everything went through."""
        with self._lock:
            held = list(self._unrecorded.values())
        ok = True
        for entry, lease in held:
            if self._record(entry, lease):
                with self._lock:
                    self._unrecorded.pop(entry.jobId, None)
            else:
                ok = False
        if not ok:
            return False  # Redis is not answering: the pending entries can wait
        for entry in self.jobs.take_pending_dead(self.storage.clock(), HOLD):
            if not self.deliver(entry):
                ok = False
                self._postpone(entry.jobId, postpone)
        return ok
