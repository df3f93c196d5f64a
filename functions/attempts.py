"""One attempt of a job delivered by a queue that keeps no job state itself (SQS), recorded through
the JobOutcomes port: the same states, counters and DLQ entries as the Redis consumer's."""

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from functions.errors import Unavailable
from functions.limits import TRACEBACK_MAX_CHARS
from functions.models import DeadJob, JobRecord
from functions.ports import DeadLetterQueue, JobOutcomes


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
                run: Callable[[JobRecord], Any], clock: Callable[[], float],
                delay_for: Callable[[int], float]) -> Attempt:
    """Run attempt number `attempt` of `job` (the message's copy) and record its outcome.

    A failure before the last of the record's maxAttempts is a retry after `delay_for(attempt)`;
    the last one is dead: its entry (error, trimmed traceback) goes to the DLQ, then the record is
    marked dead. An exception from the ports propagates: nothing is recorded as finished and the
    message comes back (the job runs again: at least once).
    """
    record = outcomes.start(job, attempt, clock())
    if record is None:
        return Attempt(Step.skipped)
    try:
        result = run(record)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        now = clock()
        if attempt < record.maxAttempts:
            delay = delay_for(attempt)
            outcomes.retrying(record.id, error, now + delay, now)
            return Attempt(Step.retry, record, error, delay)
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        entry = DeadJob(jobId=record.id, type=record.type, payload=record.payload, error=error,
                        traceback=trace[-TRACEBACK_MAX_CHARS:], attempts=attempt, failedAt=now,
                        replays=record.replays)
        try:
            dlq.put(entry)
        except Unavailable:
            outcomes.dead(entry, delivered=False)
            return Attempt(Step.redrive, record, error)
        outcomes.dead(entry, delivered=True)
        return Attempt(Step.dead, record, error)
    outcomes.completed(record.id, result, clock())
    return Attempt(Step.completed, record)
