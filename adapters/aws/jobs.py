"""The cloud pairing: jobs on Amazon SQS, their records in DynamoDB (QUEUE_BACKEND=sqs, JOB_STORE=dynamodb).

Submit is three steps, ordered so that no accepted job is lost and none is left
unrun: a conditional put of the record as `pending` (which also takes the
idempotency key), SendMessage, then `queued`. A send that fails leaves a
`pending` record and answers 503; a repeat of the same Idempotency-Key finds it
pending and sends again. A runner accepts a pending record as runnable (the
send may have worked when the mark did not), and a job sent twice runs to one
outcome (the table's state moves are conditional).

Jobs are run by `adapters.aws_lambda.jobs_handler`, which records every outcome
here (the JobOutcomes port); retries use the message's visibility timeout.

Each named queue is its own SQS queue (`urls`); a job goes to the one its id names.
Pausing a queue records it in the table (the SQS worker and the emulated trigger stop
receiving from it) and, on AWS, disables the Lambda event source mapping of its queue
(`event_sources`), so Lambda stops receiving its messages: nothing is received and
handed back, so no attempt is spent while it is paused.
"""

import json
import logging
import math
import time
from typing import Any

from adapters.aws.client import AWS_ERRORS, AWSHandle, aws_unavailable
from adapters.aws.job_lists import DynamoJobLists
from adapters.aws.job_table import ConditionFailed, JobTable
from functions.jobs import DEFAULT_QUEUE
from functions.limits import SQS_MAX_DELAY_SECONDS
from functions.models import DeadJob, JobRecord, JobState, job_queue

log = logging.getLogger("forkline.sqs")


def job_message(job: JobRecord) -> str:
    """The message of a job: with `generation` (its promotions) and the `attempts` made before it
    once it was promoted, so the promotion's message counts on from them."""
    body = {"id": job.id, "type": job.type, "payload": job.payload, "maxAttempts": job.maxAttempts}
    if job.replays:
        body["replays"] = job.replays  # read back by the SQS DLQ when the redrive policy moves it
    if job.requestId:
        body["requestId"] = job.requestId
    if job.promotions:
        body["generation"], body["attempts"] = job.promotions, job.attempts
    if job.traceparent:  # the submitting request's span: each attempt is its child
        body["traceparent"] = job.traceparent
        if job.tracestate:
            body["tracestate"] = job.tracestate
    return json.dumps(body)


def job_from_message(body: str, now: float) -> JobRecord:
    """The job a queue message carries (its record's copy, for a record that is missing)."""
    message = json.loads(body)
    return JobRecord(id=message["id"], type=message["type"], payload=message["payload"], state=JobState.queued,
                     maxAttempts=message["maxAttempts"], replays=message.get("replays", 0),
                     requestId=message.get("requestId"), createdAt=now, updatedAt=now,
                     promotions=message.get("generation", 0), attempts=message.get("attempts", 0),
                     traceparent=message.get("traceparent"), tracestate=message.get("tracestate"))


class SQSJobQueue:
    """The JobQueue and JobOutcomes ports of the SQS + DynamoDB pairing. `urls`: queue name -> its
    SQS queue; `event_sources`: queue name -> the id of the Lambda event source mapping reading it."""

    def __init__(self, urls: dict[str, str], table: JobTable, sqs: AWSHandle | None = None,
                 event_sources: dict[str, str] | None = None):
        self.urls = urls
        self.table = table
        self.sqs = sqs or AWSHandle("sqs")
        self.event_sources = event_sources or {}
        self._lambda: AWSHandle | None = None
        self.lists = DynamoJobLists(table)

    @property
    def queue_url(self) -> str:
        """The `default` queue's SQS queue."""
        return self.urls[DEFAULT_QUEUE]

    def url_for(self, job_id: str) -> str:
        return self.urls[job_queue(job_id)]

    def url_of_arn(self, arn: str) -> str:
        """The URL of one of the queues, from its ARN (as a Lambda event record names its source); the
        `default` queue's for a source not wired here (a message visibility change then fails, logged,
        and the source's own visibility timeout applies)."""
        name = arn.rsplit(":", 1)[-1]
        return next((url for url in self.urls.values() if url.rstrip("/").rsplit("/", 1)[-1] == name),
                    self.queue_url)

    def _send(self, job: JobRecord) -> None:
        """A scheduled job's message is delayed until its runAt (DelaySeconds: at most 900 s, which
        POST /jobs checks); its record stays `scheduled` until a runner starts it."""
        delay: dict[str, int] = {}
        if job.runAt:
            delay["DelaySeconds"] = max(0, min(math.ceil(job.runAt - time.time()), SQS_MAX_DELAY_SECONDS))
        try:
            self.sqs.client.send_message(QueueUrl=self.url_for(job.id), MessageBody=job_message(job), **delay)
        except AWS_ERRORS as exc:
            raise aws_unavailable(exc, "submit") from None
        try:
            self.table.mark_queued(job.id, JobState.scheduled if job.runAt else JobState.queued)
        except Exception:  # the message is sent: the job will run; its record says pending until then
            log.warning("job %s sent but not marked queued", job.id, exc_info=True)

    def submit(self, job: JobRecord, once: tuple[str, str] | None = None) -> tuple[str, str] | None:
        now = time.time()
        try:
            self.table.put_pending(job, once, now)
        except ConditionFailed as failed:
            key_held = len(failed.reasons) > 1 and failed.reasons[1].get("Code") == "ConditionalCheckFailed"
            if once is None or not key_held:
                raise aws_unavailable(RuntimeError(f"job id {job.id} taken"), "submit", "dynamodb") from None
            held = failed.reasons[1].get("Item") or {}
            holder = (held["jobId"]["S"], held["fingerprint"]["S"]) if held else self.table.holder(once[0])
            if holder is None:  # expired between the write and the read: the client may try again
                raise aws_unavailable(RuntimeError("idempotency key expired"), "submit", "dynamodb") from None
            if holder[1] == once[1]:
                first = self.table.get(holder[0])
                if first is not None and first.state == JobState.pending:
                    self._send(first)  # the first request's send failed (or its mark): send it now
            return holder
        self._send(job)
        self.lists.add(job_queue(job.id), "accepted", now)
        return None

    def requeue(self, job: JobRecord) -> None:
        self._send(self.table.replace_pending(job, time.time()))

    def list_jobs(self, states: list[str], queues: list[str], job_type: str | None, limit: int,
                  cursor: str | None) -> tuple[list[JobRecord], str | None]:
        return self.lists.list_jobs(states, queues, job_type, limit, cursor)

    def history(self, queues: list[str], since: int, until: int, step: int) -> dict[int, dict[str, int]]:
        return self.lists.history(queues, since, until, step)

    def oldest_waiting(self, now: float) -> dict[str, float]:
        return self.lists.oldest_waiting(now)

    def get(self, job_id: str) -> JobRecord | None:
        return self.table.get(job_id)

    def cancel(self, job_id: str, now: float) -> JobState | None:
        """The message stays on the queue; the runner drops it when it arrives (the record says cancelled)."""
        return self.table.cancel(job_id, now)

    def forget(self, job_id: str) -> JobState | None:
        return self.table.forget(job_id)

    def promote(self, job_id: str, now: float) -> tuple[JobState | None, bool]:
        """A delayed SQS message cannot be made visible early: the record moves to pending with one
        promotion more, and a new message of that generation is sent (then the record says queued).
        The delayed one is dropped when it arrives (job_table.stale). A failed send answers 503 and
        leaves the record pending: the delayed message then runs the job at its time."""
        found, promoted = self.table.promote(job_id, now)
        if promoted is None:
            return found, False
        self._send(promoted)
        return found, True

    def progress(self, job_id: str, fraction: float, note: str) -> None:
        self.table.progress(job_id, fraction, note)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per queue: waiting: SQS's visible messages; active: its in-flight ones less the jobs waiting
        out a retry delay (in flight to SQS); delayed: those jobs; completed/failed: exact, and paused,
        from the table."""
        totals = self.table.totals(list(self.urls))
        counts = {}
        for queue, url in self.urls.items():
            try:
                attrs = self.sqs.client.get_queue_attributes(QueueUrl=url, AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed"])["Attributes"]
            except AWS_ERRORS as exc:
                raise aws_unavailable(exc, "counts") from None
            found = totals[queue]
            counts[queue] = {
                "waiting": int(attrs["ApproximateNumberOfMessages"]),
                "active": max(0, int(attrs["ApproximateNumberOfMessagesNotVisible"]) - found["retrying"]),
                "completed": found["completed"],
                "failed": found["failed"],
                "delayed": found["retrying"] + int(attrs["ApproximateNumberOfMessagesDelayed"]),
                "paused": found["paused"],
            }
        return counts

    def pause(self, queue: str, paused: bool) -> None:
        """Recorded in the table, then the queue's event source mapping (if any) disabled or enabled."""
        self.table.set_paused(queue, paused)
        mapping = self.event_sources.get(queue)
        if mapping:
            self._lambda = self._lambda or AWSHandle("lambda")
            try:
                self._lambda.client.update_event_source_mapping(UUID=mapping, Enabled=not paused)
            except AWS_ERRORS as exc:
                raise aws_unavailable(exc, "pause", "lambda") from None

    def paused(self, queue: str) -> bool:
        return self.table.paused(queue)

    # The JobOutcomes port: what the jobs handler records of each attempt.

    def start(self, job: JobRecord, attempt: int, now: float) -> JobRecord | None:
        return self.table.start(job, attempt, now)

    def completed(self, job_id: str, result: Any, now: float, retention: int | None = None) -> None:
        self.table.completed(job_id, result, now, retention)
        self.lists.add(job_queue(job_id), "completed", now)

    def retrying(self, job_id: str, error: str, next_attempt_at: float, now: float, attempt: int) -> None:
        self.table.retrying(job_id, error, next_attempt_at, now, attempt)
        self.lists.add(job_queue(job_id), "retried", now)

    def dead(self, entry: DeadJob, delivered: bool) -> None:
        self.table.dead(entry, delivered)
        if delivered:  # an undelivered death is recorded again when its entry lands
            self.lists.add(entry.queue, "failed", entry.failedAt)


class CloudProbe:
    """Health of the SQS queue and the DynamoDB table, checked at most once per `ttl` seconds."""

    def __init__(self, jobs: SQSJobQueue, ttl: float = 5.0):
        self.jobs, self.ttl = jobs, ttl
        self._checked_at = float("-inf")
        self._up = {"sqs": False, "dynamodb": False}

    def _reachable(self, check: Any) -> bool:
        try:
            check()
            return True
        except Exception:
            return False

    def dependencies(self) -> dict[str, bool]:
        if time.monotonic() - self._checked_at >= self.ttl:
            jobs = self.jobs
            self._up = {
                "sqs": self._reachable(lambda: jobs.sqs.client.get_queue_attributes(
                    QueueUrl=jobs.queue_url, AttributeNames=["QueueArn"])),
                "dynamodb": self._reachable(lambda: jobs.table.get("probe")),
            }
            self._checked_at = time.monotonic()
        return dict(self._up)
