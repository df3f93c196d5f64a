"""Lambda's SQS trigger, emulated for `forkline run --cloud`: the jobs function behind its event source.

Like the event source mapping: long-poll the jobs queue for up to the template's
BatchSize messages, hand them to `adapters.aws_lambda.jobs_handler` as one event
of real-shaped SQS records with a context whose remaining time counts down from
the function's Timeout, then delete every record not named in
`batchItemFailures` (ReportBatchItemFailures). The rest stay with SQS: their
visibility timeout, the handler's visibility changes and the queue's redrive
policy apply, as in the cloud.
"""

import logging
import os
import signal
import time
import uuid
from typing import Any

from adapters import aws_lambda
from adapters.aws.client import AWS_ERRORS, AWSHandle
from adapters.logs import setup_logging
from adapters.settings import Settings

log = logging.getLogger("forkline.lambda")
POLL_WAIT = 5  # seconds of long polling: also how soon an idle poller notices SIGTERM


class LambdaContext:
    """What the Lambda runtime passes a handler (the parts a handler reads)."""

    def __init__(self, function_name: str, timeout: float, memory_mb: int = 512):
        self.function_name = function_name
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda builds from received SQS messages."""
    region = queue_arn.split(":")[3]
    return {"Records": [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": {name: {"stringValue": a.get("StringValue"), "binaryValue": a.get("BinaryValue"),
                                     "stringListValues": [], "binaryListValues": [], "dataType": a["DataType"]}
                              for name, a in m.get("MessageAttributes", {}).items()},
        "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    } for m in messages]}


class EventSource:
    def __init__(self, queue_url: str, batch_size: int, timeout: float, sqs: AWSHandle | None = None):
        self.queue_url, self.batch_size, self.timeout = queue_url, batch_size, timeout
        self.sqs = sqs or AWSHandle("sqs")
        self.stop_requested = False  # set by the signal handler
        self._arn = ""

    def queue_arn(self) -> str:
        if not self._arn:
            self._arn = self.sqs.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
                "Attributes"]["QueueArn"]
        return self._arn

    def poll_once(self) -> int:
        """One receive and, if it brought messages, one invocation; how many records it carried."""
        messages = self.sqs.client.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=POLL_WAIT,
            MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return 0
        event = sqs_event(messages, self.queue_arn())
        result = aws_lambda.jobs_handler(event, LambdaContext("JobsFunction", self.timeout))
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [r for r in event["Records"] if r["messageId"] not in failed]
        for i in range(0, len(done), 10):
            self.sqs.client.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": r["receiptHandle"]} for n, r in enumerate(done[i:i + 10])])
        return len(messages)

    def run(self) -> None:
        parent = os.getppid()
        while not self.stop_requested and os.getppid() == parent:  # a supervisor gone is a stop
            try:
                self.poll_once()
            except AWS_ERRORS as exc:
                log.warning("event source poll failed: %s", exc, extra={"event": "event_source_failed"})
                time.sleep(1.0)


def run_event_source(settings: Settings, batch_size: int, timeout: float) -> None:
    """Run until SIGINT/SIGTERM; an invocation under way finishes first."""
    setup_logging("lambda-jobs", settings.log_level, settings.log_dir)
    assert settings.jobs_sqs_queue_url, "set by the embedded cloud"
    source = EventSource(settings.jobs_sqs_queue_url, batch_size, timeout)

    def stop(signum: int, frame: Any) -> None:
        source.stop_requested = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    log.info("Lambda SQS trigger emulated: batches of up to %d, function timeout %gs", batch_size, timeout,
             extra={"event": "consumer_started"})
    source.run()
