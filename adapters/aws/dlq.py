"""The DLQ on Amazon SQS (DLQ_BACKEND=sqs, DLQ_SQS_QUEUE_URL).

SQS has no random access, so list/get/take peek: receive a batch with a short
visibility timeout, read it, then make every message visible again at once
(take deletes only the message it returns). A message in flight elsewhere is
not seen during that moment; nothing is ever lost by a read.

Reading never changes what an entry says: a peek raises a message's
`ApproximateReceiveCount`, so attempts and failure time come from what stays put.
An entry forkline dead-lettered itself carries them as message attributes (and in
its body). A job message moved by the jobs queue's redrive policy cannot be changed:
its attempts are the source queue's `maxReceiveCount` (it was received that many
times before the move) and its failure time is its `SentTimestamp` (SQS keeps a
redriven message's original timestamp; the moment of the move is not recorded).
"""

import builtins
import json
import time

from adapters.aws.client import AWS_ERRORS, AWSHandle, aws_unavailable
from functions.models import DeadJob, DeadJobFilter

PEEK_LIMIT = 1000  # most messages one listing reads
PEEK_VISIBILITY = 60  # longer than a pass of PEEK_LIMIT messages takes


def decode(message: dict, max_receive_count: int | None = None) -> DeadJob:
    """A DLQ message: one we put (a DeadJob) or a job message redriven by the jobs queue."""
    body = json.loads(message["Body"])
    if "jobId" in body:
        job = DeadJob.model_validate(body)
        attributes = message.get("MessageAttributes", {})
        if "attempts" in attributes and "failedAt" in attributes:
            job.attempts = int(attributes["attempts"]["StringValue"])
            job.failedAt = float(attributes["failedAt"]["StringValue"])
        return job
    return DeadJob(
        jobId=body["id"],
        type=body["type"],
        payload=body["payload"],
        error="exceeded the retry limit (moved by the queue's redrive policy)",
        attempts=max_receive_count or body.get("maxAttempts", 0),
        replays=body.get("replays", 0),
        failedAt=int(message.get("Attributes", {}).get("SentTimestamp", time.time() * 1000)) / 1000,
    )


def unique(seen: list[tuple[DeadJob | None, dict]]) -> list[DeadJob]:
    """One entry per job, oldest failure first: SQS delivers at least once, so a put retried
    after a timeout can leave two messages for one job."""
    by_id: dict[str, DeadJob] = {}
    for job, _ in seen:
        if job is not None:
            by_id.setdefault(job.jobId, job)
    return sorted(by_id.values(), key=lambda j: j.failedAt)


class SQSDLQ:
    """`redrive_sources`: the queues whose redrive policy moves job messages here (the named queues'
    SQS queues, `default`'s first: the source of a message that does not name its own with
    `DeadLetterQueueSourceArn`)."""

    def __init__(self, queue_url: str, sqs: AWSHandle | None = None, redrive_sources: tuple[str, ...] = ()):
        self.queue_url = queue_url
        self.sqs = sqs or AWSHandle("sqs")
        self.redrive_sources = redrive_sources
        self._max_receive: dict[str, int | None] = {}

    def max_receive_count(self, message: dict) -> int | None:
        """The redrive policy's maxReceiveCount of the queue a message was moved from (cached);
        None when unknown (the entry then reports the job's own maxAttempts)."""
        source = message.get("Attributes", {}).get("DeadLetterQueueSourceArn") or next(iter(self.redrive_sources), None)
        if source is None:
            return None
        if source not in self._max_receive:
            try:
                url = source
                if source.startswith("arn:"):
                    _, _, _, _, account, name = source.split(":", 5)
                    known = [u for u in self.redrive_sources if u.rstrip("/").split("/")[-2:] == [account, name]]
                    if known:
                        url = known[0]  # a jobs queue itself: no GetQueueUrl (nor its permission) needed
                    else:
                        url = self.sqs.client.get_queue_url(QueueName=name,
                                                            QueueOwnerAWSAccountId=account)["QueueUrl"]
                attrs = self.sqs.client.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
            except AWS_ERRORS:
                return None
            policy = attrs.get("Attributes", {}).get("RedrivePolicy")
            self._max_receive[source] = int(json.loads(policy)["maxReceiveCount"]) if policy else None
        return self._max_receive[source]

    def put(self, job: DeadJob) -> None:
        try:
            self.sqs.client.send_message(
                QueueUrl=self.queue_url,
                MessageBody=job.model_dump_json(),
                MessageAttributes={
                    "jobId": {"DataType": "String", "StringValue": job.jobId},
                    "type": {"DataType": "String", "StringValue": job.type},
                    "attempts": {"DataType": "Number", "StringValue": str(job.attempts)},
                    "failedAt": {"DataType": "Number", "StringValue": f"{job.failedAt:.3f}"},
                },
            )
        except AWS_ERRORS as exc:
            raise aws_unavailable(exc, "put") from None

    def count(self) -> int:
        try:
            attrs = self.sqs.client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        except AWS_ERRORS as exc:
            raise aws_unavailable(exc, "count") from None
        return int(attrs["ApproximateNumberOfMessages"])

    def count_by_queue(self) -> None:
        """One SQS DLQ takes every queue's dead jobs: only the total is known."""
        return None

    def _peek(self, want: int) -> list[tuple[DeadJob | None, dict]]:
        """Receive up to `want` messages, each once (a message seen again means the pass has
        gone round, or outlived PEEK_VISIBILITY): the caller makes them visible again."""
        seen: list[tuple[DeadJob | None, dict]] = []
        ids: set[str] = set()
        while len(seen) < want:
            batch = self.sqs.client.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=PEEK_VISIBILITY,
                WaitTimeSeconds=0, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [m for m in batch if m["MessageId"] not in ids]
            if not fresh:
                break
            for message in fresh:
                ids.add(message["MessageId"])
                try:
                    body_is_ours = "jobId" in json.loads(message["Body"])
                    seen.append((decode(message, None if body_is_ours else self.max_receive_count(message)),
                                 message))
                except (ValueError, KeyError, TypeError):
                    seen.append((None, message))  # not ours: left alone, made visible again
        return seen

    def _release(self, messages: list[dict]) -> None:
        for i in range(0, len(messages), 10):
            chunk = messages[i:i + 10]
            self.sqs.client.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for n, m in enumerate(chunk)])

    def list(self, offset: int, limit: int) -> list[DeadJob]:
        return self.matching(DeadJobFilter())[0][offset:offset + limit]

    def get(self, job_id: str) -> DeadJob | None:
        return next((job for job in self.matching(DeadJobFilter())[0] if job.jobId == job_id), None)

    def take_many(self, job_ids: builtins.list[str]) -> builtins.list[DeadJob]:
        """One pass: the wanted messages seen are deleted, every other one made visible again."""
        if not job_ids:
            return []
        wanted = set(job_ids)
        try:
            seen = self._peek(PEEK_LIMIT)
            found: dict[str, DeadJob] = {}
            doomed, others = [], []
            for job, message in seen:
                if job is not None and job.jobId in wanted:
                    found.setdefault(job.jobId, job)
                    doomed.append(message)  # every copy: SQS can hold a job's entry twice
                else:
                    others.append(message)
            for i in range(0, len(doomed), 10):
                self.sqs.client.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(doomed[i:i + 10])])
            self._release(others)
        except AWS_ERRORS as exc:
            raise aws_unavailable(exc, "take") from None
        return [found[job_id] for job_id in job_ids if job_id in found]

    def matching(self, where: DeadJobFilter) -> tuple[builtins.list[DeadJob], bool]:
        """What one pass sees (at most PEEK_LIMIT messages); complete when that was every message."""
        try:
            seen = self._peek(PEEK_LIMIT + 1)
            self._release([m for _, m in seen])
        except AWS_ERRORS as exc:
            raise aws_unavailable(exc, "list") from None
        complete = len(seen) <= PEEK_LIMIT
        return [job for job in unique(seen[:PEEK_LIMIT]) if where.matches(job)], complete
