"""run_attempt over in-memory ports: which outcome each attempt records, and what it asks of the queue."""

import pytest

from functions.attempts import Backoff, Dead, Failure, Retry, Step, after_failure, describe, run_attempt
from functions.errors import JobFailed, Unavailable
from functions.jobs import run_job
from functions.limits import TRACEBACK_MAX_CHARS
from functions.models import DeadJob, JobRecord, JobState
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

    def completed(self, job_id, result, now, retention=None):
        self._move(job_id, JobState.completed, result=result, finishedAt=now)

    def retrying(self, job_id, error, next_attempt_at, now, attempt):
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
                       backoff=Backoff(2.0), rand=lambda: 0.5)


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

    def broken_completed(job_id, result, now, retention=None):
        raise Unavailable("The DynamoDB job table is unavailable (test)", dependency="dynamodb")

    outcomes.completed = broken_completed
    with pytest.raises(Unavailable):
        attempt(job(False), 1, outcomes)
    assert outcomes.records["j1"].state == JobState.active  # its message comes back and it runs again


# after_failure: the one retry-or-dead decision (Redis consumer, SQS worker, Lambda jobs function).
@pytest.mark.parametrize("attempt, max_attempts, backoff, rand, expected", [
    (1, 4, Backoff(2.0), 0.5, Retry(at=102.0, delay=2.0)),  # the template's 2, 4, 8 s
    (2, 4, Backoff(2.0), 0.5, Retry(at=104.0, delay=4.0)),
    (3, 4, Backoff(2.0), 0.5, Retry(at=108.0, delay=8.0)),
    (4, 4, Backoff(2.0), 0.5, "dead"),  # the last attempt
    (5, 4, Backoff(2.0), 0.5, "dead"),  # past it (a poison job's lost attempts)
    (1, 1, Backoff(2.0), 0.5, "dead"),  # no retries at all
    (6, 9, Backoff(2.0, cap=30.0), 0.5, Retry(at=130.0, delay=30.0)),  # 64 s capped at JOB_BACKOFF_MAX
    (1, 4, Backoff(2.0, jitter=0.5), 0.0, Retry(at=101.0, delay=1.0)),  # jitter: 2 s spread over 1-3 s
    (1, 4, Backoff(2.0, jitter=0.5), 0.99, Retry(at=102.98, delay=2.98)),
    (2, 4, Backoff(0.0), 0.5, Retry(at=100.0, delay=0.0)),  # base 0: at once
])
def test_after_failure_retries_on_the_backoff_until_the_last_attempt(attempt, max_attempts, backoff, rand, expected):
    failure = Failure("default.j1", "message", {"message": "hi"}, attempt, max_attempts, "JobFailed: boom",
                      "Traceback ...", replays=2, priority=8)
    decision = after_failure(failure, 100.0, backoff, rand)
    if expected == "dead":
        assert decision == Dead(DeadJob(jobId="default.j1", type="message", payload={"message": "hi"},
                                        error="JobFailed: boom", traceback="Traceback ...", attempts=attempt,
                                        failedAt=100.0, replays=2, priority=8))
    else:
        assert isinstance(decision, Retry) and decision.at == pytest.approx(expected.at)
        assert decision.delay == pytest.approx(expected.delay)


def test_a_dead_entry_keeps_the_end_of_a_long_traceback():
    trace = "x" * TRACEBACK_MAX_CHARS + "the end"
    decision = after_failure(Failure("j", "message", {}, 1, 1, "E: e", trace), 0.0, Backoff(2.0), 0.5)
    assert isinstance(decision, Dead) and decision.entry.traceback.endswith("the end")
    assert len(decision.entry.traceback) == TRACEBACK_MAX_CHARS


def test_describe_names_the_exception_and_keeps_its_traceback():
    try:
        raise JobFailed("Job failed on purpose: hi")
    except JobFailed as exc:
        error, trace = describe(exc)
    assert error == "JobFailed: Job failed on purpose: hi"
    assert trace.startswith("Traceback (most recent call last)") and "raise JobFailed" in trace
