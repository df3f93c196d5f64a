"""Lambda's SQS triggers, emulated for `forkline run --cloud`: the jobs function behind its event sources.

One EventSource per SQS event of the jobs function in the template (one per named
queue), each in its own thread. Like an event source mapping: long-poll its queue
for up to the event's BatchSize messages (nothing while the queue is paused: the
paused flag in the job table stands in for the mapping's Enabled, which
POST /queues/{name}/pause sets on AWS), hand them to `adapters.aws_lambda.jobs_handler` as one event
of real-shaped SQS records with a context whose remaining time counts down from
the function's Timeout, then delete every record not named in
`batchItemFailures` (ReportBatchItemFailures). The rest stay with SQS: their
visibility timeout, the handler's visibility changes and the queue's redrive
policy apply, as in the cloud.
"""

import logging
import os
import signal
import threading
import time
import uuid
from typing import Any

from adapters import aws_lambda
from adapters.aws.client import AWSHandle
from adapters.aws.jobs import SQSJobQueue
from adapters.logs import setup_logging
from adapters.settings import Settings
from adapters.wiring import build_cloud_ports

log = logging.getLogger("forkline.lambda")
POLL_WAIT = 1  # seconds of long polling: also how soon an idle poller notices SIGTERM or a pause


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
    """`jobs` (with `queue`, its name): where the queue's paused flag is read."""

    def __init__(self, queue_url: str, batch_size: int, timeout: float, sqs: AWSHandle | None = None,
                 jobs: SQSJobQueue | None = None, queue: str = "default"):
        self.queue_url, self.batch_size, self.timeout = queue_url, batch_size, timeout
        self.sqs = sqs or AWSHandle("sqs")
        self.jobs, self.queue = jobs, queue
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

    def run(self, parent: int) -> None:
        while not self.stop_requested and os.getppid() == parent:  # a supervisor gone is a stop
            try:
                if self.jobs is not None and self.jobs.paused(self.queue):
                    time.sleep(1.0)  # the mapping is disabled: nothing received, no attempt spent
                    continue
                self.poll_once()
            except Exception as exc:
                log.warning("event source poll failed: %s", exc, extra={"event": "event_source_failed"})
                time.sleep(1.0)


def run_event_source(settings: Settings, batch_sizes: dict[str, int], timeout: float) -> None:
    """Run until SIGINT/SIGTERM; the invocations under way finish first. `batch_sizes`: each SQS
    trigger's queue (the template's resource name, which is the emulated queue's name) -> BatchSize."""
    setup_logging("lambda-jobs", settings.log_level, settings.log_dir)
    jobs = build_cloud_ports(settings).jobs
    sources = [EventSource(url, batch_sizes[url.rstrip("/").rsplit("/", 1)[-1]], timeout, jobs=jobs, queue=name)
               for name, url in jobs.urls.items()]

    def stop(signum: int, frame: Any) -> None:
        for source in sources:
            source.stop_requested = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    log.info("Lambda SQS triggers emulated: %s; function timeout %gs",
             ", ".join(f"{s.queue} (batches of up to {s.batch_size})" for s in sources), timeout,
             extra={"event": "consumer_started"})
    parent = os.getppid()
    threads = [threading.Thread(target=source.run, args=(parent,), name=f"{source.queue}-trigger")
               for source in sources[1:]]
    for thread in threads:
        thread.start()
    try:
        sources[0].run(parent)
    finally:
        for source in sources:
            source.stop_requested = True
        for thread in threads:
            thread.join()
