"""The one Huey instance, its task and the hooks that record every outcome.

The task is a thin wrapper around `functions.jobs.run_job`. The post-execute
hook is the one place that sees every outcome (success, error, timeout), so
the job record, the counters and the DLQ step live there.
"""

import json
import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from huey import RedisHuey

from adapters.job_store import RedisJobQueue
from adapters.job_timeout import JobWatchdog
from adapters.leased_storage import LeasedRedisStorage
from functions.jobs import backoff_delay, run_job
from functions.models import DeadJob, JobRecord
from functions.ports import DeadLetterQueue

log = logging.getLogger("forkline.queue")

TRACEBACK_LIMIT = 4000


class ForklineHuey(RedisHuey):
    storage_class = LeasedRedisStorage

    def serialize_task(self, task) -> bytes:
        return task.id.encode() + b"\n" + super().serialize_task(task)

    def deserialize_task(self, data: bytes):
        return super().deserialize_task(data.split(b"\n", 1)[1])

    def dequeue(self):
        while True:
            claimed = self.storage.claim_or_wait()
            if claimed is None:
                return None
            data, attempt, max_attempts = claimed
            max_attempts = max_attempts or runtime.max_attempts
            task = self.deserialize_task(data)
            task.lease, task.attempt, task.started, task.settled = data, attempt, False, False
            if attempt <= max_attempts:
                task.retries = max_attempts - attempt
                task.retry_delay = backoff_delay(attempt, runtime.backoff_base)
                task.retry_backoff = None
                return task
            # The job's consumer died under it on every attempt (a poison job).
            error = f"consumer lost while running the job ({attempt - 1} attempts)"
            if bury(task, error, "", attempts=attempt - 1):
                self.storage.ack(data)

    def execute(self, task, timestamp=None):
        try:
            return super().execute(task, timestamp)
        finally:
            lease = getattr(task, "lease", None)
            # Not started: rescheduled for later. Started but not settled: interrupted,
            # or its outcome could not be recorded (Redis down); the lease expiring runs it again.
            if lease is not None and not getattr(task, "deferred", False):
                if not task.started or task.settled:
                    self.storage.ack(lease)
                else:
                    self.storage.forget(lease)

    # forkline does not revoke tasks: skip Huey's per-task revoke lookups (two round trips a job).
    def is_revoked(self, task, timestamp=None, peek=True) -> bool:
        return False

    def delete(self, key):
        if isinstance(key, str) and key.startswith("r:"):
            return False
        return super().delete(key)


@dataclass
class Runtime:
    jobs: RedisJobQueue | None = None
    dlq: DeadLetterQueue | None = None
    max_attempts: int = 4
    backoff_base: float = 2.0
    watchdog: JobWatchdog = field(default_factory=lambda: JobWatchdog(300.0))


huey = ForklineHuey("forkline", results=False, utc=True)
runtime = Runtime()


def configure(redis_url: str, lease: float, jobs: RedisJobQueue, dlq: DeadLetterQueue,
              max_attempts: int, backoff_base: float, job_timeout: float, batch: int = 1) -> None:
    """Point the Huey instance at Redis and give the hooks their ports (no connection yet)."""
    huey.storage.configure(redis_url, lease, batch=batch, retention=jobs.retention)
    runtime.jobs, runtime.dlq = jobs, dlq
    runtime.max_attempts, runtime.backoff_base = max_attempts, backoff_base
    runtime.watchdog = JobWatchdog(job_timeout)


@huey.task(name="forkline.run_job")
def run_job_task(type_name: str, payload: dict[str, Any]) -> Any:
    with runtime.watchdog.limit():
        return run_job(type_name, payload)


def encode_job(job: JobRecord) -> bytes:
    """The queue message for a job record, as the HTTP side enqueues it."""
    return huey.serialize_task(run_job_task.s(job.type, job.payload, id=job.id))


def bury(task, error: str, trace: str, attempts: int) -> bool:
    """Move a job to the DLQ and mark it dead. True when both were recorded."""
    type_name, payload = task.args
    entry = DeadJob(jobId=task.id, type=type_name, payload=payload, error=error,
                    traceback=trace[-TRACEBACK_LIMIT:], attempts=attempts, failedAt=time.time())
    try:
        runtime.dlq.put(entry)
        runtime.jobs.mark_dead(task.id, error, entry.failedAt)
    except Exception:
        log.exception("could not move job %s to the DLQ; it stays leased and will be retried", task.id,
                      extra={"event": "dlq_put_failed", "jobId": task.id})
        return False
    log.warning("job %s moved to the DLQ after %d attempts: %s", task.id, attempts, error,
                extra={"event": "job_dead", "jobId": task.id, "attempts": attempts})
    return True


@huey.pre_execute()
def mark_started(task) -> None:
    task.started = True


@huey.post_execute()
def record_outcome(task, value: Any, exc: BaseException | None) -> None:
    now = time.time()
    if exc is None:
        # Recorded (with the lease dropped) on this thread's next claim, in the same round trip.
        huey.storage.complete(task.id, json.dumps(value, default=str), task.lease)
        task.settled = task.deferred = True
        return
    error = f"{type(exc).__name__}: {exc}"
    if task.retries:
        runtime.jobs.mark_retrying(task.id, error, now + task.retry_delay, now)
        log.info("job %s attempt %d failed, retrying in %.1fs", task.id, task.attempt, task.retry_delay,
                 extra={"event": "job_retrying", "jobId": task.id, "attempt": task.attempt})
        task.settled = True
        return
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    task.settled = bury(task, error, trace, attempts=task.attempt)
