"""What happens after an attempt: the one retry-or-dead decision (`after_failure`), used by the
Redis consumer, the SQS worker and the Lambda jobs function alike; and one attempt of a job
delivered by a queue that keeps no job state itself (SQS), recorded through the JobOutcomes port:
the same states, counters and DLQ entries as the Redis consumer's."""

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from functions.errors import Unavailable
from functions.jobs import DEFAULT_PRIORITY, backoff_delay
from functions.limits import TRACEBACK_MAX_CHARS
from functions.models import DeadJob, JobRecord
from functions.ports import DeadLetterQueue, JobOutcomes


@dataclass(frozen=True)
class Backoff:
    """JOB_BACKOFF_BASE, JOB_BACKOFF_MAX and JOB_BACKOFF_JITTER: retry n waits base * 2^(n-1) s."""

    base: float
    cap: float = 300.0
    jitter: float = 0.0

    def delay(self, attempt: int, rand: float) -> float:
        return backoff_delay(attempt, self.base, self.cap, self.jitter, rand)


@dataclass(frozen=True)
class Failure:
    """A failed attempt: the job, which attempt of how many, and what went wrong."""

    job_id: str
    job_type: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    error: str  # "<exception type>: <message>"
    trace: str = ""
    replays: int = 0
    priority: int = DEFAULT_PRIORITY


@dataclass(frozen=True)
class Retry:
    at: float  # when the next attempt may start (the clock `now` was read on)
    delay: float


@dataclass(frozen=True)
class Dead:
    entry: DeadJob  # what goes to the dead-letter queue


def describe(exc: BaseException) -> tuple[str, str]:
    """(error, traceback) of a failed attempt, as the job record and the DLQ show them."""
    return f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def after_failure(failure: Failure, now: float, backoff: Backoff, rand: float) -> Retry | Dead:
    """A failure before the last of `max_attempts` is retried after backoff.delay(attempt); the last
    one is dead, with its DLQ entry (error, traceback trimmed to TRACEBACK_MAX_CHARS, failed at `now`).
    `rand`: uniform in [0, 1), the caller's random number (used only with jitter)."""
    if failure.attempt < failure.max_attempts:
        delay = backoff.delay(failure.attempt, rand)
        return Retry(at=now + delay, delay=delay)
    return Dead(DeadJob(jobId=failure.job_id, type=failure.job_type, payload=failure.payload, error=failure.error,
                        traceback=failure.trace[-TRACEBACK_MAX_CHARS:], attempts=failure.attempt, failedAt=now,
                        replays=failure.replays, priority=failure.priority))


class Step(StrEnum):
    completed = "completed"
    retry = "retry"  # give the message back, visible again after `delay`
    dead = "dead"  # the DLQ entry is written: delete the message
    redrive = "redrive"  # dead, but the DLQ put failed: give the message back for the redrive policy
    skipped = "skipped"  # finished already (a repeated delivery): delete the message


@dataclass(frozen=True)
class Attempt:
    step: Step
    record: JobRecord | None = None
    error: str | None = None
    delay: float = 0.0


def run_attempt(job: JobRecord, attempt: int, outcomes: JobOutcomes, dlq: DeadLetterQueue,
                run: Callable[[JobRecord], Any], clock: Callable[[], float], backoff: Backoff,
                rand: Callable[[], float]) -> Attempt:
    """Run attempt number `attempt` of `job` (the message's copy) and record its outcome.

    A failure is retried or dead as `after_failure` decides: a dead job's entry goes to the DLQ,
    then the record is marked dead. An exception from the ports propagates: nothing is recorded as
    finished and the message comes back (the job runs again: at least once).
    """
    record = outcomes.start(job, attempt, clock())
    if record is None:
        return Attempt(Step.skipped)
    try:
        result = run(record)
    except Exception as exc:
        error, trace = describe(exc)
        now = clock()
        decision = after_failure(Failure(record.id, record.type, record.payload, attempt, record.maxAttempts, error,
                                         trace, record.replays, record.priority), now, backoff, rand())
        if isinstance(decision, Retry):
            outcomes.retrying(record.id, error, decision.at, now, attempt)
            return Attempt(Step.retry, record, error, decision.delay)
        try:
            dlq.put(decision.entry)
        except Unavailable:
            outcomes.dead(decision.entry, delivered=False)
            return Attempt(Step.redrive, record, error)
        outcomes.dead(decision.entry, delivered=True)
        return Attempt(Step.dead, record, error)
    outcomes.completed(record.id, result, clock(), record.retention)
    return Attempt(Step.completed, record)
