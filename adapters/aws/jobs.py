"""The job queue on Amazon SQS (QUEUE_BACKEND=sqs, JOBS_SQS_QUEUE_URL) and its health probe.

Jobs are run by `adapters.aws_lambda.jobs_handler`; retries use the message's
visibility timeout and the queue's redrive policy moves a job that keeps
failing to the DLQ. SQS keeps no per-job state: GET /jobs/{id} answers 404 in
this mode and `completed`/`failed` are not counted (see the README).
"""

import json
import time

from adapters.aws.client import SQS_ERRORS, SQSHandle, sqs_unavailable
from functions.errors import Unsupported
from functions.models import JobRecord


def job_message(job: JobRecord) -> str:
    body = {"id": job.id, "type": job.type, "payload": job.payload, "maxAttempts": job.maxAttempts}
    if job.replays:
        body["replays"] = job.replays  # read back by the SQS DLQ when the redrive policy moves it
    return json.dumps(body)


class SQSJobQueue:
    def __init__(self, queue_url: str, sqs: SQSHandle | None = None):
        self.queue_url = queue_url
        self.sqs = sqs or SQSHandle()

    def submit(self, job: JobRecord, once: tuple[str, str] | None = None) -> None:
        if once is not None:
            # A standard queue has no lasting deduplication (FIFO queues only for 5 minutes).
            raise Unsupported("Idempotency-Key needs the Redis job queue (QUEUE_BACKEND=redis)")
        self.requeue(job)

    def requeue(self, job: JobRecord) -> None:
        try:
            self.sqs.client.send_message(QueueUrl=self.queue_url, MessageBody=job_message(job))
        except SQS_ERRORS as exc:
            raise sqs_unavailable(exc, "submit") from None

    def get(self, job_id: str) -> JobRecord | None:
        return None

    def counts(self) -> dict[str, int]:
        try:
            attrs = self.sqs.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        except SQS_ERRORS as exc:
            raise sqs_unavailable(exc, "counts") from None
        return {
            "waiting": int(attrs["ApproximateNumberOfMessages"]),
            "active": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            "completed": 0,
            "failed": 0,
            "delayed": int(attrs["ApproximateNumberOfMessagesDelayed"]),
        }

    def reachable(self) -> bool:
        try:
            self.sqs.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
            return True
        except SQS_ERRORS:
            return False


class SQSProbe:
    """Health of the SQS job queue, checked at most once per `ttl` seconds."""

    def __init__(self, jobs: SQSJobQueue, ttl: float = 5.0):
        self.jobs, self.ttl = jobs, ttl
        self._checked_at, self._up = float("-inf"), False

    def dependencies(self) -> dict[str, bool]:
        if time.monotonic() - self._checked_at >= self.ttl:
            self._up = self.jobs.reachable()
            self._checked_at = time.monotonic()
        return {"sqs": self._up}
