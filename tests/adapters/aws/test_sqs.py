"""SQS adapters and the jobs handler against moto's mocked SQS."""

import json
import time

import pytest

from adapters.aws.dlq import SQSDLQ
from adapters.aws.jobs import SQSJobQueue
from adapters.aws_lambda import _jobs_context, jobs_handler, queue_url_from_arn
from functions import dead_letters, routes
from functions.errors import Unavailable, Unsupported
from functions.models import DeadJob


@pytest.fixture
def queues(aws):
    dlq_url = aws.create_queue(QueueName="jobs-dlq")["QueueUrl"]
    dlq_arn = aws.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    jobs_url = aws.create_queue(QueueName="jobs", Attributes={
        "VisibilityTimeout": "30",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "4"})})["QueueUrl"]
    return jobs_url, dlq_url


def dead(job_id, failed_at):
    return DeadJob(jobId=job_id, type="message", payload={"message": job_id, "shouldFail": True},
                   error="JobFailed: x", attempts=4, failedAt=failed_at)


def test_dlq_put_count_list_get_without_losing_messages(queues):
    _, dlq_url = queues
    dlq = SQSDLQ(dlq_url)
    for job_id, at in (("b", 2.0), ("a", 1.0), ("c", 3.0)):
        dlq.put(dead(job_id, at))
    assert dlq.count() == 3
    assert [e.jobId for e in dlq.list(0, 10)] == ["a", "b", "c"]
    assert [e.jobId for e in dlq.list(1, 1)] == ["b"]
    assert dlq.get("c").payload["message"] == "c"
    assert dlq.count() == 3  # reads left every message in place and visible


def test_dlq_entries_put_by_forkline_read_the_same_however_often_they_are_listed(queues):
    _, dlq_url = queues
    dlq = SQSDLQ(dlq_url)
    dlq.put(dead("a", 1234.5))
    seen = [dlq.list(0, 10)[0] for _ in range(4)]
    assert {(e.attempts, e.failedAt) for e in seen} == {(4, 1234.5)}
    message = dlq.sqs.client.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"],
                                             MessageSystemAttributeNames=["All"])["Messages"][0]
    assert int(message["Attributes"]["ApproximateReceiveCount"]) == 5  # what the old code reported
    assert message["MessageAttributes"]["attempts"]["StringValue"] == "4"


def test_a_redriven_entry_reports_the_source_queues_max_receive_count(queues, aws):
    jobs_url, dlq_url = queues
    body = {"id": "r1", "type": "message", "payload": {"message": "x"}, "maxAttempts": 7}
    aws.send_message(QueueUrl=dlq_url, MessageBody=json.dumps(body))  # as the redrive policy moves it
    assert SQSDLQ(dlq_url, redrive_source_url=jobs_url).get("r1").attempts == 4  # maxReceiveCount
    assert SQSDLQ(dlq_url).get("r1").attempts == 7  # source unknown: the job's own maxAttempts


def test_dlq_take_removes_exactly_one(queues):
    _, dlq_url = queues
    dlq = SQSDLQ(dlq_url)
    dlq.put(dead("a", 1.0))
    dlq.put(dead("b", 2.0))
    assert [e.jobId for e in dlq.take_many(["a"])] == ["a"]
    assert dlq.take_many(["a"]) == []
    assert dlq.count() == 1 and [e.jobId for e in dlq.list(0, 10)] == ["b"]


def test_idempotency_keys_are_refused_on_the_sqs_queue(queues, aws):
    jobs_url, _ = queues
    with pytest.raises(Unsupported) as err:
        routes.submit_job({"message": "x"}, SQSJobQueue(jobs_url), lambda: "j1", time.time(), 4, idempotency_key="k1")
    assert err.value.status == 501
    attrs = aws.get_queue_attributes(QueueUrl=jobs_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_sqs_errors_become_503(aws):
    dlq = SQSDLQ("https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    with pytest.raises(Unavailable) as err:
        dlq.count()
    assert err.value.status == 503 and err.value.dependency == "sqs"
    with pytest.raises(Unavailable):
        dlq.put(dead("a", 1.0))


def sqs_event(client, queue_url, max_messages=10):
    """Receive like the Lambda event source mapping and build its event."""
    arn = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messages = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=max_messages,
                                      MessageSystemAttributeNames=["All"]).get("Messages", [])
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1"} for m in messages]}, messages


def submit(queue, body):
    return routes.submit_job(body, queue, lambda: f"id-{time.monotonic_ns()}", time.time(), 4)[0].jobId


def test_jobs_handler_reports_exactly_the_failed_record(queues, aws, monkeypatch):
    jobs_url, _ = queues
    monkeypatch.setenv("JOBS_SQS_QUEUE_URL", jobs_url)
    monkeypatch.setenv("QUEUE_BACKEND", "sqs")
    monkeypatch.setenv("LOG_DIR", "")
    _jobs_context.cache_clear()
    queue = SQSJobQueue(jobs_url)
    for i in range(3):
        submit(queue, {"message": f"ok{i}", "shouldFail": False})
    submit(queue, {"message": "bad", "shouldFail": True})
    event, messages = sqs_event(aws, jobs_url)
    assert len(event["Records"]) == 4
    result = jobs_handler(event, None)
    bad = [r["messageId"] for r in event["Records"] if json.loads(r["body"])["payload"]["shouldFail"]]
    assert result == {"batchItemFailures": [{"itemIdentifier": bad[0]}]}


def test_failing_job_is_retried_with_backoff_then_redriven_to_the_dlq(queues, aws, monkeypatch):
    jobs_url, dlq_url = queues
    monkeypatch.setenv("JOBS_SQS_QUEUE_URL", jobs_url)
    monkeypatch.setenv("QUEUE_BACKEND", "sqs")
    monkeypatch.setenv("JOB_BACKOFF_BASE", "0")  # the delay's value is checked in the unit test of backoff
    monkeypatch.setenv("LOG_DIR", "")
    _jobs_context.cache_clear()
    job_id = submit(SQSJobQueue(jobs_url), {"message": "bad", "shouldFail": True})
    for attempt in range(1, 5):
        event, messages = sqs_event(aws, jobs_url)
        assert len(messages) == 1, f"attempt {attempt}"
        assert messages[0]["Attributes"]["ApproximateReceiveCount"] == str(attempt)
        assert jobs_handler(event, None)["batchItemFailures"]
    # The 5th receive exceeds maxReceiveCount=4: SQS moves the message to the DLQ.
    assert aws.receive_message(QueueUrl=jobs_url).get("Messages", []) == []
    dlq = SQSDLQ(dlq_url, redrive_source_url=jobs_url)
    assert dlq.count() == 1
    entry = dlq.get(job_id)
    assert entry.type == "message" and entry.payload == {"message": "bad", "shouldFail": True}
    # Every listing raises the message's ApproximateReceiveCount; the entry does not change with it.
    listed = [dlq.list(0, 10)[0] for _ in range(4)]
    assert {(e.attempts, e.failedAt) for e in listed} == {(4, entry.failedAt)} and entry.attempts == 4
    # Replay puts it back on the jobs queue and removes it from the DLQ.
    dead_letters.replay_one(job_id, dlq, SQSJobQueue(jobs_url), time.time(), 4)
    assert dlq.count() == 0
    assert SQSJobQueue(jobs_url).counts()["waiting"] == 1


def test_visibility_backoff_is_applied(queues, aws, monkeypatch):
    jobs_url, _ = queues
    monkeypatch.setenv("JOBS_SQS_QUEUE_URL", jobs_url)
    monkeypatch.setenv("QUEUE_BACKEND", "sqs")
    monkeypatch.setenv("JOB_BACKOFF_BASE", "2")
    monkeypatch.setenv("LOG_DIR", "")
    _jobs_context.cache_clear()
    submit(SQSJobQueue(jobs_url), {"message": "bad", "shouldFail": True})
    event, _ = sqs_event(aws, jobs_url)
    jobs_handler(event, None)
    # Hidden for 2 s after the first failure, not the queue's 30 s.
    assert aws.receive_message(QueueUrl=jobs_url).get("Messages", []) == []
    time.sleep(2.2)
    assert len(aws.receive_message(QueueUrl=jobs_url).get("Messages", [])) == 1


def test_queue_url_from_arn():
    arn = "arn:aws:sqs:eu-west-1:123456789012:jobs"
    assert queue_url_from_arn(arn) == "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
    assert queue_url_from_arn(arn, "http://127.0.0.1:5000") == "http://127.0.0.1:5000/123456789012/jobs"
