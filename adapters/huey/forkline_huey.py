"""One Huey instance per named queue (built by `queue_huey`), its task and the hooks that record
every outcome.

The task is a thin wrapper around `functions.jobs.run_job`. The post-execute
hook is the one place that sees every outcome (success, error, timeout: a
JobTimeout is raised in the job's thread, so it arrives as an error), so the
job record, the counters and the DLQ step live there (the DLQ step itself, with
its retries when the DLQ fails, is the outbox: adapters/huey/outbox.py).
"""

import datetime
import json
import logging
import random
import time
from functools import cache
from typing import Any

from huey import RedisHuey
from huey.api import Task, TaskWrapper

from adapters.huey.outbox import DeadLetterOutbox
from adapters.huey.running import Outcome, RunningJob
from adapters.huey.storage import LeasedRedisStorage
from adapters.job_progress import JobProgressWriter
from adapters.job_timeout import JobWatchdog
from adapters.logs import REQUEST_ID, TRACE, FastLogger
from adapters.redis.client import RedisTarget
from adapters.redis.framing import (
    COMPACT_FORMAT,
    HUEY_FORMAT,
    MESSAGE_FORMAT,
    compact_message,
    frame_message,
    framed_job_id,
    message_format,
    read_compact,
    unframe_message,
)
from adapters.redis.keys import QueueKeys
from adapters.redis.queue_store import QueueStore
from adapters.tracing import attempt_span
from functions.attempts import Backoff, Failure, Retry, after_failure, describe
from functions.context import JobContext
from functions.jobs import job_timeout, run_job
from functions.models import DeadJob, JobRecord
from functions.ports import DeadLetterQueue, JobMetrics

UNREAD_CLOCK = datetime.datetime.min  # see ForklineHuey.execute
TASK_MODULE = "adapters.huey.tasks"  # part of the message format: see queue_huey
log = logging.getLogger("forkline.queue")
jobs_log = FastLogger("forkline.jobs")


class NoJobMetrics:
    def job_started(self, job_type: str, waited: float | None = None) -> None:
        pass

    def job_finished(self, job_type: str, outcome: str, seconds: float | None) -> None:
        pass


def running(task: Task) -> RunningJob:
    """The RunningJob attached to a claimed task (see ForklineHuey.dequeue)."""
    job: RunningJob = task.running_job
    return job


class ForklineHuey(RedisHuey):
    """RedisHuey with leased, at-least-once delivery and outcomes recorded in the job store.

    What forkline overrides, and why (a test checks these Huey hooks still exist,
    tests/adapters/huey/test_huey_contract.py; Huey is pinned to 3.5.x):
    - `storage_class`: LeasedRedisStorage, whose dequeue leases a message instead of popping it.
    - `serialize_task` / `deserialize_task`: frame the message with the job id, so Lua can find its record;
      read the compact format 3 (JSON, adapters/redis/framing.py) into the same task, without Huey's pickle.
    - `dequeue`: claim a message with its attempt number, max attempts and priority, attach a
      RunningJob, and set Huey's `retries` to 0: Huey never requeues a task; the post-execute hook
      carries out `functions.attempts.after_failure` (a retry goes to the schedule on time through
      the storage; a poison job past its attempts is buried here).
    - `execute`: afterwards, drop the lease or let it expire, by the RunningJob's outcome.
    - `is_revoked` / `delete` of revoke keys: forkline does not revoke tasks; this skips
      two Redis round trips per job.
    - `_get_timestamp`: Huey's "now" (whether a task is due, the scheduler's due read) is Redis's
      clock, as the retries' due times are, so a retry is due at the same moment on every host.
    - pre/post-execute hooks (`_mark_started`, `_record_outcome`): registered in `__init__`.
    Also private: `Consumer._signal_actions` (local/runtime/consumer.py changes what SIGTERM and SIGHUP do),
    and `_signum`, `_graceful`, `_set_signal_handlers` (local/runtime/consumer.py's run_all drives one Huey
    consumer per queue through them).
    """

    storage_class = LeasedRedisStorage
    storage: LeasedRedisStorage
    run_job_task: TaskWrapper  # set by queue_huey

    def __init__(self, queue_keys: QueueKeys) -> None:
        super().__init__(f"forkline.{queue_keys.queue}", results=False, utc=True, queue_keys=queue_keys)
        self.keys = queue_keys
        self.jobs: QueueStore | None = None
        self.outbox: DeadLetterOutbox | None = None
        self.max_attempts = 4
        self.backoff = Backoff(2.0)
        self.watchdog = JobWatchdog(300.0)
        self.metrics: JobMetrics = NoJobMetrics()
        self.running_now: dict[str, float] = {}  # job id -> when it started (Redis's clock), for the heartbeat
        self.done = 0
        self.pre_execute("forkline.started")(self._mark_started)
        self.post_execute("forkline.outcome")(self._record_outcome)

    def configure(self, redis_url: RedisTarget | str, lease: float, jobs: QueueStore, dlq: DeadLetterQueue,
                  max_attempts: int, backoff_base: float, job_timeout: float, batch: int = 1,
                  metrics: JobMetrics | None = None, backoff_max: float = 300.0, backoff_jitter: float = 0.0,
                  priority_aging: float = 10.0) -> None:
        """Point the storage at Redis and give the hooks their ports (no connection yet)."""
        self.storage.configure(redis_url, lease, batch=batch, retention=jobs.retention, priority_aging=priority_aging)
        self.metrics = metrics or NoJobMetrics()
        self.jobs, self.outbox = jobs, DeadLetterOutbox(jobs, dlq, self.storage)
        self.max_attempts = max_attempts
        self.backoff = Backoff(backoff_base, backoff_max, backoff_jitter)
        self.watchdog = JobWatchdog(job_timeout)

    def serialize_task(self, task: Task) -> bytes:
        return frame_message(task.id, super().serialize_task(task), min(self.keys.format, HUEY_FORMAT))

    def deserialize_task(self, data: bytes) -> Task:
        if message_format(data) == COMPACT_FORMAT:
            job_id, job_type, payload, request_id, replays = read_compact(data)
            return self.run_job_task.task_class((job_type, payload, request_id, replays), {}, id=job_id)
        return super().deserialize_task(unframe_message(data))

    def dequeue(self) -> Task | None:
        while True:
            claimed = self.storage.claim_or_wait()
            if claimed is None:
                return None
            data, attempt, max_attempts, priority, ready_at, trace = claimed
            max_attempts = max_attempts or self.max_attempts
            if message_format(data) > MESSAGE_FORMAT:  # from newer code: bury it rather than misread it
                self._bury_unreadable(data, attempt)
                continue
            task = self.deserialize_task(data)
            task.running_job = RunningJob(message=data, attempt=attempt, max_attempts=max_attempts, priority=priority,
                                          ready_at=ready_at, trace=trace)
            task.retries = 0  # Huey never schedules a retry itself: _settle does (after_failure)
            if attempt <= max_attempts:
                return task
            # The job's consumer died under it on every attempt (a poison job): dead, no retry left.
            lost = self.failure(task, attempt - 1, attempt - 1, f"consumer lost while running the job "
                                                                f"({attempt - 1} attempts)", "")
            self.settle_failure(lost, data, None)  # dead: its lease is dropped, or held until it can be

    def _bury_unreadable(self, data: bytes, attempt: int) -> None:
        """Dead-letter a message this code cannot read, with its record's type and payload (so a
        replay by newer code runs it) when the record can be read."""
        assert self.outbox is not None and self.jobs is not None, "configure() first"
        job_id = framed_job_id(data)
        try:
            record = self.jobs.get(job_id)
        except Exception:  # a record this code cannot read either
            record = None
        type_name, payload = (record.type, record.payload) if record else ("unknown", {})
        entry = DeadJob(jobId=job_id, type=type_name, payload=payload, attempts=attempt, failedAt=self.storage.clock(),
                        error=f"message format {message_format(data)} is newer than this consumer's "
                              f"({MESSAGE_FORMAT}): replay it once every consumer runs the new code")
        self.outbox.bury(entry, data)

    def execute(self, task: Task, timestamp: Any = None) -> Any:
        if timestamp is None and task.eta is None and task.expires_resolved is None:
            # Huey reads its clock for each task only to compare it with an eta or an expiry: a claimed
            # task has neither (the schedule's move decides when a job is due), so the read decides nothing.
            timestamp = UNREAD_CLOCK
        try:
            return super().execute(task, timestamp)
        finally:
            job = running(task)  # every task here came from dequeue()
            if job.outcome not in (Outcome.WITH_NEXT_CLAIM, Outcome.HELD):
                if job.keeps_lease():
                    self.storage.forget(job.message)  # interrupted or unrecorded: the lease expiring runs it again
                else:
                    self.storage.ack(job.message)  # not started (rescheduled), or its outcome is recorded

    def _get_timestamp(self) -> datetime.datetime:
        # Naive UTC, as Huey's own with utc=True (set in __init__).
        return datetime.datetime.fromtimestamp(self.storage.clock(), datetime.UTC).replace(tzinfo=None)

    def is_revoked(self, task: Task, timestamp: Any = None, peek: bool = True) -> bool:
        return False

    def delete(self, key: str) -> bool:
        if isinstance(key, str) and key.startswith("r:"):
            return False
        return bool(super().delete(key))

    @staticmethod
    def failure(task: Task, attempt: int, max_attempts: int, error: str, trace: str) -> Failure:
        return Failure(task.id, task.args[0], task.args[1], attempt, max_attempts, error, trace,
                       task.args[3] if len(task.args) > 3 else 0, running(task).priority)

    def settle_failure(self, failure: Failure, message: bytes, seconds: float | None,
                       job: RunningJob | None = None) -> Outcome:
        """What `after_failure` decides, carried out: the retry scheduled on time (its message moves from
        its lease to the schedule), or the job recorded dead and sent to the DLQ (see the outbox)."""
        now = self.storage.clock()
        decision = after_failure(failure, now, self.backoff, random.random())
        kind = "retried" if isinstance(decision, Retry) else "dead"
        if job is not None:
            job.kind = kind
        self.metrics.job_finished(failure.job_type, kind, seconds)
        if isinstance(decision, Retry):
            # Unrecorded if this raises: Huey logs it, and the lease expiring runs the job again.
            self.storage.retry(failure.job_id, message, failure.error, decision.at, now)
            jobs_log.warning("job retrying", event="job_retrying", jobId=failure.job_id, type=failure.job_type,
                             attempt=failure.attempt, delay=decision.delay, error=failure.error)
            return Outcome.RECORDED
        assert self.outbox is not None, "configure() first"
        return Outcome.RECORDED if self.outbox.bury(decision.entry, message) else Outcome.HELD

    def context(self, task: Task) -> JobContext:
        """The running job's context (functions/context.py): its progress goes to its record."""
        assert self.jobs is not None, "configure() first"
        return JobContext(task.id, running(task).attempt, self.keys.queue, task.args[0],
                          JobProgressWriter(self.jobs.progress), time.monotonic)

    def _mark_started(self, task: Task) -> None:
        job = running(task)
        job.started, job.started_at = True, time.perf_counter()
        job.job_type = task.args[0]
        # The request that submitted the job: in every line logged while it runs (this thread's context).
        REQUEST_ID.set(task.args[2] if len(task.args) > 2 and task.args[2] else None)
        job.span = attempt_span(job.trace, task.id, job.job_type, self.keys.queue, job.attempt)
        TRACE.set(job.span)
        now = self.running_now[task.id] = self.storage.clock()
        jobs_log.debug("job started", event="job_started", jobId=task.id, type=job.job_type, attempt=job.attempt)
        self.metrics.job_started(job.job_type, max(0.0, now - job.ready_at) if job.ready_at else None)

    def _record_outcome(self, task: Task, value: Any, exc: BaseException | None) -> None:
        job = running(task)
        seconds = time.perf_counter() - job.started_at
        self.running_now.pop(task.id, None)
        self.done += 1
        try:
            self._settle(task, job, value, exc, seconds)
        finally:
            if job.span is not None and job.span.recording:
                job.span.end(**{"forkline.job.outcome": job.kind or "unrecorded"})
            REQUEST_ID.set(None)
            TRACE.set(None)

    def _settle(self, task: Task, job: RunningJob, value: Any, exc: BaseException | None, seconds: float) -> None:
        if exc is None:
            self.storage.complete(task.id, json.dumps(value, default=str), job.message)
            job.outcome, job.kind = Outcome.WITH_NEXT_CLAIM, "completed"
            jobs_log.info("job completed", event="job_completed", jobId=task.id, type=job.job_type,
                          durationMs=round(seconds * 1000, 3))
            self.metrics.job_finished(job.job_type, "completed", seconds)
            return
        error, trace = describe(exc)
        job.outcome = self.settle_failure(self.failure(task, job.attempt, job.max_attempts, error, trace),
                                          job.message, seconds, job)


@cache
def queue_huey(queue_keys: QueueKeys) -> ForklineHuey:
    """The Huey instance of one queue's keyspace (one per process), with the job task registered."""
    huey = ForklineHuey(queue_keys)

    def run_job_task(type_name: str, payload: dict[str, Any], request_id: str = "", replays: int = 0,
                     task: Task | None = None) -> Any:
        """`request_id`: the X-Request-ID that submitted it; `replays`: times it came back from the DLQ
        (messages from before these existed have neither); `task`: Huey's (context=True), not in the message."""
        assert task is not None
        with huey.watchdog.limit(*job_timeout(type_name, huey.watchdog.timeout)):
            return run_job(type_name, payload, huey.context(task))

    # Every queued message names its task as `<module>.<name>`: the module is the one this code lived
    # in when the first messages were written, so that messages of every earlier version still run.
    run_job_task.__module__ = TASK_MODULE
    huey.run_job_task = huey.task(name="forkline.run_job", context=True)(run_job_task)
    return huey


def encode_job(job: JobRecord, queue_keys: QueueKeys, newest: int = MESSAGE_FORMAT) -> bytes:
    """The queue message for a job record, as the HTTP side enqueues it: in its keyspace's format, no
    newer than `newest` (QUEUE_MESSAGE_FORMAT)."""
    if min(queue_keys.format, newest) >= COMPACT_FORMAT:
        return compact_message(job.id, job.type, job.payload, job.requestId or "", job.replays)
    huey = queue_huey(queue_keys)
    message: bytes = huey.serialize_task(huey.run_job_task.s(job.type, job.payload, job.requestId or "",
                                                             job.replays, id=job.id))
    return message
