"""The SQS DLQ, and the jobs handler's retries and redrive, against moto's mocked SQS."""

import json
import time

import pytest

from adapters.aws.dlq import SQSDLQ
from functions.errors import Unavailable
from functions.models import DeadJob
from tests.adapters.aws.lambda_events import call, post, run_jobs, v2


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
    assert SQSDLQ(dlq_url, redrive_sources=(jobs_url,)).get("r1").attempts == 4  # maxReceiveCount
    assert SQSDLQ(dlq_url).get("r1").attempts == 7  # source unknown: the job's own maxAttempts


def test_dlq_take_removes_exactly_one(queues):
    _, dlq_url = queues
    dlq = SQSDLQ(dlq_url)
    dlq.put(dead("a", 1.0))
    dlq.put(dead("b", 2.0))
    assert [e.jobId for e in dlq.take_many(["a"])] == ["a"]
    assert dlq.take_many(["a"]) == []
    assert dlq.count() == 1 and [e.jobId for e in dlq.list(0, 10)] == ["b"]


def test_sqs_errors_become_503(aws):
    dlq = SQSDLQ("https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    with pytest.raises(Unavailable) as err:
        dlq.count()
    assert err.value.status == 503 and err.value.dependency == "sqs"
    with pytest.raises(Unavailable):
        dlq.put(dead("a", 1.0))


def test_jobs_handler_reports_exactly_the_failed_record(cloud):
    for i in range(3):
        post({"message": f"ok{i}", "shouldFail": False})
    post({"message": "bad", "shouldFail": True})
    event, result = run_jobs(cloud)
    assert len(event["Records"]) == 4
    bad = [r["messageId"] for r in event["Records"] if json.loads(r["body"])["payload"]["shouldFail"]]
    assert result == {"batchItemFailures": [{"itemIdentifier": bad[0]}]}


def test_when_the_dlq_put_fails_the_job_is_recorded_dead_and_the_redrive_policy_moves_it(cloud, monkeypatch):
    monkeypatch.setenv("JOB_BACKOFF_BASE", "0")
    monkeypatch.setenv("DLQ_SQS_QUEUE_URL", cloud.dlq_url.replace("JobsDeadLetterQueue", "missing"))  # puts fail
    job_id = post({"message": "bad", "shouldFail": True})[1]["jobId"]
    for attempt in range(1, 5):
        event, result = run_jobs(cloud)
        assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == str(attempt)
        assert result["batchItemFailures"]
    job = call(v2("GET", f"/jobs/{job_id}"))[1]
    assert (job["state"], job["dlqPending"], job["attempts"]) == ("dead", True, 4)
    # The 5th receive exceeds maxReceiveCount=4: SQS moves the message to the DLQ.
    assert cloud.sqs.receive_message(QueueUrl=cloud.jobs_url).get("Messages", []) == []
    dlq = SQSDLQ(cloud.dlq_url, redrive_sources=(cloud.jobs_url,))
    entry = dlq.get(job_id)
    assert entry.type == "message" and entry.payload == {"message": "bad", "shouldFail": True}
    # Every listing raises the message's ApproximateReceiveCount; the entry does not change with it.
    listed = [dlq.list(0, 10)[0] for _ in range(4)]
    assert {(e.attempts, e.failedAt) for e in listed} == {(4, entry.failedAt)} and entry.attempts == 4


def test_visibility_backoff_is_applied(cloud, monkeypatch):
    monkeypatch.setenv("JOB_BACKOFF_BASE", "2")
    post({"message": "bad", "shouldFail": True})
    run_jobs(cloud)
    failed_at = time.monotonic()  # the message was hidden inside run_jobs: at most this late

    def visible() -> bool:  # a look that leaves it visible (VisibilityTimeout=0)
        return bool(cloud.sqs.receive_message(QueueUrl=cloud.jobs_url, VisibilityTimeout=0).get("Messages"))

    # Hidden for 2 s after the first failure (JOB_BACKOFF_BASE), not less, and not the queue's 180 s.
    deadline = failed_at + 10
    while not visible() and time.monotonic() < deadline:
        time.sleep(0.05)
    hidden_for = time.monotonic() - failed_at
    assert 1.8 <= hidden_for <= 5.0, hidden_for
