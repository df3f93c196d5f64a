"""run_attempt over in-memory ports: which outcome each attempt records, and what it asks of the queue."""

import pytest

from functions.attempts import Step, run_attempt
from functions.errors import JobFailed, Unavailable
from functions.jobs import run_job
from functions.limits import TRACEBACK_MAX_CHARS
from functions.models import JobRecord, JobState
from tests.fakes import MemoryDLQ


class MemoryOutcomes:
    """The JobOutcomes contract in memory: moves only from the state it expects."""

    def __init__(self):
        self.records: dict[str, JobRecord] = {}
        self.log: list[tuple] = []

    def start(self, job, attempt, now):
        record = self.records.setdefault(job.id, job)
        if record.state in (JobState.completed, JobState.dead):
            return None
        self.records[job.id] = record.model_copy(update={"state": JobState.active, "attempts": attempt})
        return self.records[job.id]

    def _move(self, job_id, state, **fields):
        assert self.records[job_id].state == JobState.active
        self.records[job_id] = self.records[job_id].model_copy(update={"state": state, **fields})
        self.log.append((job_id, state))

    def completed(self, job_id, result, now):
        self._move(job_id, JobState.completed, result=result, finishedAt=now)

    def retrying(self, job_id, error, next_attempt_at, now):
        self._move(job_id, JobState.retrying, lastError=error, nextAttemptAt=next_attempt_at)

    def dead(self, entry, delivered):
        self._move(entry.jobId, JobState.dead, lastError=entry.error, dlqPending=not delivered)


class DownDLQ(MemoryDLQ):
    def put(self, job):
        raise Unavailable("The SQS queue is unavailable (test)", dependency="sqs")


def job(should_fail: bool, max_attempts: int = 3) -> JobRecord:
    return JobRecord(id="j1", type="message", payload={"message": "hi", "shouldFail": should_fail},
                     state=JobState.queued, maxAttempts=max_attempts, createdAt=1.0, updatedAt=1.0)


def attempt(record, number, outcomes, dlq=None, run=None):
    return run_attempt(record, number, outcomes, dlq if dlq is not None else MemoryDLQ(),
                       run or (lambda r: run_job(r.type, r.payload)), clock=lambda: 100.0,
                       delay_for=lambda n: 2.0 * 2 ** (n - 1))


def test_a_success_is_recorded_completed_with_its_result():
    outcomes = MemoryOutcomes()
    assert attempt(job(False), 1, outcomes).step == Step.completed
    assert outcomes.records["j1"].result == {"processed": "hi"}


def test_a_failure_before_the_last_attempt_is_a_retry_after_the_backoff():
    outcomes = MemoryOutcomes()
    first = attempt(job(True), 1, outcomes)
    assert (first.step, first.delay) == (Step.retry, 2.0)
    second = attempt(job(True), 2, outcomes)
    assert (second.step, second.delay) == (Step.retry, 4.0)
    record = outcomes.records["j1"]
    assert (record.state, record.nextAttemptAt) == (JobState.retrying, 104.0)
    assert record.lastError == "JobFailed: Job failed on purpose: hi"


def test_the_last_failure_puts_the_entry_with_a_trimmed_traceback_then_records_dead():
    outcomes, dlq = MemoryOutcomes(), MemoryDLQ()

    def noisy(record):
        raise JobFailed("x" * (2 * TRACEBACK_MAX_CHARS))

    assert attempt(job(True), 3, outcomes, dlq, noisy).step == Step.dead
    entry = dlq.get("j1")
    assert entry.attempts == 3 and entry.error.startswith("JobFailed: xxx")
    assert len(entry.traceback) == TRACEBACK_MAX_CHARS and entry.traceback.endswith("x\n")
    assert (outcomes.records["j1"].state, outcomes.records["j1"].dlqPending) == (JobState.dead, False)


def test_a_dlq_that_fails_leaves_the_job_dead_and_pending_for_the_redrive():
    outcomes = MemoryOutcomes()
    assert attempt(job(True), 3, outcomes, DownDLQ()).step == Step.redrive
    assert (outcomes.records["j1"].state, outcomes.records["j1"].dlqPending) == (JobState.dead, True)


def test_a_repeated_delivery_of_a_finished_job_is_skipped_unrun():
    outcomes = MemoryOutcomes()
    attempt(job(False), 1, outcomes)
    ran = []
    assert attempt(job(False), 2, outcomes, run=lambda r: ran.append(r)).step == Step.skipped
    assert ran == [] and outcomes.log == [("j1", JobState.completed)]


def test_a_port_that_fails_propagates_and_records_no_outcome():
    outcomes = MemoryOutcomes()

    def broken_completed(job_id, result, now):
        raise Unavailable("The DynamoDB job table is unavailable (test)", dependency="dynamodb")

    outcomes.completed = broken_completed
    with pytest.raises(Unavailable):
        attempt(job(False), 1, outcomes)
    assert outcomes.records["j1"].state == JobState.active  # its message comes back and it runs again
