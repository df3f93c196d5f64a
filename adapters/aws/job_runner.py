"""Running SQS job messages: one attempt each, its outcome recorded, its message settled.

Shared by the Lambda jobs handler (adapters/aws_lambda.py) and the SQS worker
(`forkline worker` with QUEUE_BACKEND=sqs, local/runtime/sqs_worker.py): the same
`functions.attempts.run_attempt`, time limit, backoff, log lines and metrics.
What differs is who deletes a finished message: Lambda's event source mapping
(from the reported batch failures), or the worker itself (`delete_finished`).
"""

import logging
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from adapters.aws.client import AWS_ERRORS
from adapters.aws.jobs import SQSJobQueue, job_from_message
from adapters.job_progress import JobProgressWriter
from adapters.job_timeout import JobWatchdog
from adapters.logs import REQUEST_ID, TRACE, FastLogger
from adapters.tracing import attempt_span
from functions.attempts import Attempt, Backoff, Step, run_attempt
from functions.context import JobContext
from functions.jobs import job_timeout, run_job
from functions.models import JobRecord
from functions.ports import DeadLetterQueue, JobMetrics

log = logging.getLogger("forkline.sqs")
jobs_log = FastLogger("forkline.jobs")
MAX_VISIBILITY = 43200  # SQS's upper bound, 12 h
GIVE_BACK = (Step.retry, Step.redrive)  # steps whose message is delivered again
OUTCOMES = {Step.completed: "completed", Step.retry: "retried", Step.dead: "dead", Step.redrive: "dead",
            Step.skipped: "skipped"}  # an attempt span's forkline.job.outcome


def run_limited(job: JobRecord, seconds: float, limit_name: str, ctx: JobContext) -> Any:
    """Run the job's function in this thread, stopped (JobTimeout) after `seconds`."""
    watchdog = JobWatchdog(seconds, limit_name=limit_name)
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(0.05):
            watchdog.check()

    watcher = threading.Thread(target=watch, name="job-deadline", daemon=True)
    watcher.start()
    REQUEST_ID.set(job.requestId)  # in every line logged while the job runs
    try:
        with watchdog.limit():
            return run_job(job.type, job.payload, ctx)
    finally:
        finished.set()
        watcher.join(1.0)


@dataclass
class SQSJobRunner:
    jobs: SQSJobQueue
    dlq: DeadLetterQueue
    job_timeout: float
    backoff_base: float
    backoff_max: float = 300.0
    backoff_jitter: float = 0.0
    metrics: JobMetrics | None = None
    delete_finished: bool = False  # the SQS worker deletes; Lambda's event source mapping does it there
    running: dict[str, float] = field(default_factory=dict)  # job id -> started (time.time()), for heartbeats
    done: int = 0

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.backoff_base, self.backoff_max, self.backoff_jitter)

    def run_message(self, message: dict[str, Any], queue_url: str, seconds_left: float = float("inf")) -> Step | None:
        """One attempt of the job `message` carries (an SQS message, or a Lambda event record: the keys
        differ only in case) from the SQS queue `queue_url`, stopped at its JOB_TIMEOUT (or its type's
        timeout) or after `seconds_left`; its message settled. None: the outcome could not be recorded
        (the visibility timeout brings the message back)."""
        body = message.get("body", message.get("Body"))
        attributes = message.get("attributes", message.get("Attributes", {}))
        receipt = message.get("receiptHandle", message.get("ReceiptHandle"))
        attempt = int(attributes.get("ApproximateReceiveCount", "1"))
        started = time.perf_counter()
        job_id, span = "", None
        try:
            job = job_from_message(str(body), time.time())
            job_id, attempt = job.id, job.attempts + attempt  # a promoted job's message counts on
            span = attempt_span(f"{job.traceparent}\n{job.tracestate or ''}" if job.traceparent else None,
                                job.id, job.type, job.queue, attempt)
            TRACE.set(span)
            limit, limit_name = min(job_timeout(job.type, self.job_timeout),
                                    (seconds_left, "the function's remaining time"))
            self.running[job_id] = time.time()
            outcome = run_attempt(job, attempt, self.jobs, self.dlq, run=self._run(limit, limit_name),
                                  clock=time.time, backoff=self.backoff, rand=random.random)
        except Exception as exc:
            log.error("job message %s not recorded on attempt %d: %s: %s", message.get("messageId",
                      message.get("MessageId")), attempt, type(exc).__name__, exc,
                      extra={"event": "job_unrecorded", "attempt": attempt})
            if span is not None and span.recording:
                span.end(**{"forkline.job.outcome": "unrecorded"})
            return None
        finally:
            REQUEST_ID.set(None)
            TRACE.set(None)
            self.running.pop(job_id, None)
        if span.recording:
            span.end(**{"forkline.job.outcome": OUTCOMES[outcome.step]})
        seconds = time.perf_counter() - started
        self.done += 1
        self.report(outcome, attempt, seconds)
        self.settle(queue_url, str(receipt), outcome)
        return outcome.step

    def _run(self, limit: float, limit_name: str) -> Any:
        def run(job: JobRecord) -> Any:
            jobs_log.debug("job started", event="job_started", jobId=job.id, type=job.type, attempt=job.attempts)
            if self.metrics is not None:
                self.metrics.job_started(job.type, max(0.0, time.time() - job.ready_at()))
            ctx = JobContext(job.id, job.attempts, job.queue, job.type, JobProgressWriter(self.jobs.progress),
                             time.monotonic)
            return run_limited(job, limit, limit_name, ctx)
        return run

    def settle(self, queue_url: str, receipt: str, outcome: Attempt) -> None:
        if outcome.step == Step.retry:  # whole seconds, not less
            self.set_visibility(queue_url, receipt, min(math.ceil(outcome.delay), MAX_VISIBILITY))
        elif outcome.step == Step.redrive:  # its next receive moves it to the DLQ: let that come now
            self.set_visibility(queue_url, receipt, 0)
        elif self.delete_finished:
            try:
                self.jobs.sqs.client.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
            except AWS_ERRORS as err:  # delivered again later: its record says finished, so it is skipped
                log.error("could not delete a finished job's message: %s", err)

    def set_visibility(self, queue_url: str, receipt: str, seconds: int) -> None:
        """Make the message visible again after `seconds` (else the queue's visibility timeout applies)."""
        try:
            self.jobs.sqs.client.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt,
                                                           VisibilityTimeout=seconds)
        except AWS_ERRORS as err:
            log.error("could not set a message's visibility: %s", err)

    def report(self, outcome: Attempt, attempt: int, seconds: float) -> None:
        job = outcome.record
        if job is None:
            return
        fields = {"jobId": job.id, "type": job.type, "requestId": job.requestId}
        if outcome.step == Step.completed:
            jobs_log.info("job completed", event="job_completed", attempt=attempt,
                          durationMs=round(seconds * 1000, 3), **fields)
        elif outcome.step == Step.retry:
            jobs_log.warning("job retrying", event="job_retrying", attempt=attempt, delay=outcome.delay,
                             error=outcome.error, **fields)
        else:
            jobs_log.warning("job dead", event="job_dead", attempts=attempt, error=outcome.error,
                             dlqWritten=outcome.step == Step.dead, **fields)
        if self.metrics is not None:
            kind = {Step.completed: "completed", Step.retry: "retried"}.get(outcome.step, "dead")
            self.metrics.job_finished(job.type, kind, seconds)
