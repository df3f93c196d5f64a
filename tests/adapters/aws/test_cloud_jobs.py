"""The cloud shape end to end, offline: the HTTP handler and the jobs handler fed SAM-shaped events,
with the template's queues, table and environment in moto (JOB_STORE=dynamodb)."""

import json
import time

import pytest

from adapters import aws_lambda
from adapters.aws.job_items import COUNTER_SHARDS
from tests.adapters.aws.lambda_events import Context, call, post, rest_get, run_jobs, v2
from tests.stats import template_figures


def stats():
    return call(v2("GET", "/queue/stats"))[1]


def test_a_job_submitted_over_http_and_run_by_the_jobs_handler_shows_completed(cloud):
    status, accepted, _ = post({"message": "hello cloud"})
    assert status == 202
    job_id = accepted["jobId"]
    assert rest_get(f"/jobs/{job_id}")[1]["state"] == "queued"
    event, result = run_jobs(cloud)
    assert len(event["Records"]) == 1 and result == {"batchItemFailures": []}
    status, job, _ = rest_get(f"/jobs/{job_id}")
    assert status == 200
    assert (job["state"], job["result"], job["attempts"]) == ("completed", {"processed": "hello cloud"}, 1)
    assert job["finishedAt"] >= job["createdAt"]
    assert template_figures(stats()) == {"waiting": 0, "active": 0, "completed": 1, "failed": 0, "delayed": 0, "dlq": 0,
                       "dlqPending": 0}


def test_counters_are_exact_across_shards_and_a_repeated_delivery_counts_once(cloud):
    ids = [post({"message": f"m{i}"})[1]["jobId"] for i in range(40)]
    delivered = []
    while len(delivered) < 40:
        event, result = run_jobs(cloud)
        assert result == {"batchItemFailures": []}
        delivered += event["Records"]
    # SQS delivers at least once: the same messages again find their jobs completed and skip them.
    again = {"Records": delivered[:5]}
    assert aws_lambda.jobs_handler(again, Context()) == {"batchItemFailures": []}
    assert stats()["completed"] == 40
    assert {rest_get(f"/jobs/{job_id}")[1]["attempts"] for job_id in ids} == {1}
    shards = cloud.dynamodb.scan(TableName=cloud.table, FilterExpression="begins_with(pk, :c)",
                                 ExpressionAttributeValues={":c": {"S": "counter#"}})["Items"]
    assert 1 < len(shards) <= COUNTER_SHARDS  # spread over items, summed on read
    assert sum(int(item["completed"]["N"]) for item in shards) == 40


def test_a_repeated_idempotency_key_returns_the_first_job(cloud):
    first = post({"message": "once"}, key="order-7")
    again = post({"message": "once"}, key="order-7", base64_body=False)
    assert (first[0], again[0]) == (202, 200) and first[1]["jobId"] == again[1]["jobId"]
    other = post({"message": "another body"}, key="order-7")
    assert other[0] == 422 and other[1]["code"] == "idempotency_key_reused"
    assert other[1]["details"] == {"jobId": first[1]["jobId"]}
    event, _ = run_jobs(cloud)
    assert [json.loads(r["body"])["id"] for r in event["Records"]] == [first[1]["jobId"]]  # one message


def test_a_failed_send_is_recovered_by_the_repeat(cloud):
    # The fault, for real: the jobs queue is gone when the first request sends.
    cloud.sqs.delete_queue(QueueUrl=cloud.jobs_url)
    status, body, _ = post({"message": "survives"}, key="pay-42")
    assert status == 503 and body["details"] == {"dependency": "sqs"}
    pending = cloud.dynamodb.scan(TableName=cloud.table, FilterExpression="#s = :p",
                                  ExpressionAttributeNames={"#s": "state"},
                                  ExpressionAttributeValues={":p": {"S": "pending"}})["Items"]
    assert len(pending) == 1  # accepted, not sent: written as pending
    job_id = pending[0]["id"]["S"]
    assert cloud.recreate_jobs_queue() == cloud.jobs_url  # the queue is back
    status, body, _ = post({"message": "survives"}, key="pay-42")
    assert (status, body["jobId"]) == (200, job_id)
    assert rest_get(f"/jobs/{job_id}")[1]["state"] == "queued"
    assert run_jobs(cloud)[1] == {"batchItemFailures": []}
    assert rest_get(f"/jobs/{job_id}")[1]["result"] == {"processed": "survives"}


def test_a_job_that_keeps_failing_shows_its_error_in_the_dlq(cloud, monkeypatch):
    monkeypatch.setenv("JOB_BACKOFF_BASE", "0")  # 2, 4, 8 s are checked by the backoff's own tests
    job_id = post({"message": "doomed", "shouldFail": True})[1]["jobId"]
    for attempt in range(1, 4):
        event, result = run_jobs(cloud)
        assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
        job = rest_get(f"/jobs/{job_id}")[1]
        assert (job["state"], job["attempts"]) == ("retrying", attempt)
        assert job["lastError"] == "JobFailed: Job failed on purpose: doomed"
    assert stats()["delayed"] == 1
    event, result = run_jobs(cloud)  # the 4th and last attempt
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "4"
    assert result == {"batchItemFailures": []}  # its DLQ entry is written: the message is deleted
    page = rest_get("/dlq", {"limit": ["10"], "type": ["message"]})[1]
    assert page["total"] == 1
    entry = page["items"][0]
    assert (entry["jobId"], entry["attempts"]) == (job_id, 4)
    assert entry["error"] == "JobFailed: Job failed on purpose: doomed"
    assert "Traceback (most recent call last)" in entry["traceback"] and "run_message" in entry["traceback"]
    assert rest_get(f"/jobs/{job_id}")[1]["state"] == "dead"
    assert template_figures(stats()) == {"waiting": 0, "active": 0, "completed": 0, "failed": 1, "delayed": 0,
                                         "dlq": 1, "dlqPending": 0}
    # Replayed, it runs again from attempt 1 (and fails again: it asks to).
    assert call(v2("POST", f"/dlq/{job_id}/replay"))[0] == 202
    assert rest_get(f"/jobs/{job_id}")[1]["state"] == "queued"
    assert run_jobs(cloud)[1]["batchItemFailures"] and rest_get(f"/jobs/{job_id}")[1]["attempts"] == 1


@pytest.mark.parametrize("env, context_seconds, limit", [
    ({"JOB_TIMEOUT": "1"}, 30.0, "JOB_TIMEOUT (1s)"),
    ({}, aws_lambda.STOP_MARGIN + 1.0, "the function's remaining time"),
])
def test_a_job_stops_at_job_timeout_or_before_the_functions_own_timeout(cloud, monkeypatch, env, context_seconds,
                                                                        limit):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    job_id = post({"type": "sleep", "seconds": 20})[1]["jobId"]
    started = time.monotonic()
    event, result = run_jobs(cloud, Context(context_seconds), queue="SlowJobsQueue")  # sleep jobs: the slow queue
    assert time.monotonic() - started < 10  # stopped, not run to its end
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    job = rest_get(f"/jobs/{job_id}")[1]
    assert job["state"] == "retrying" and job["attempts"] == 1  # a failed attempt: retried, not lost
    assert job["lastError"].startswith(f"JobTimeout: the job ran longer than {limit}")


def test_no_time_left_hands_the_record_back_unrun(cloud):
    job_id = post({"message": "later"})[1]["jobId"]
    event, result = run_jobs(cloud, Context(aws_lambda.STOP_MARGIN / 2))
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert rest_get(f"/jobs/{job_id}")[1]["state"] == "queued"  # not started
    assert run_jobs(cloud)[1] == {"batchItemFailures": []}  # visible again at once


def test_cancel_in_every_state_and_the_jobs_function_drops_a_cancelled_job(cloud, monkeypatch):
    monkeypatch.setenv("JOB_BACKOFF_BASE", "0")
    waiting = post({"message": "never"})[1]["jobId"]
    retrying = post({"message": "boom", "shouldFail": True})[1]["jobId"]
    status, record, _ = call(v2("DELETE", f"/jobs/{waiting}"))
    assert (status, record["state"]) == (200, "cancelled") and record["finishedAt"] is not None
    event, result = run_jobs(cloud)  # the cancelled one is dropped (deleted), the other fails once
    assert {json.loads(r["body"])["id"] for r in event["Records"]} == {waiting, retrying}
    assert len(result["batchItemFailures"]) == 1
    assert rest_get(f"/jobs/{waiting}")[1]["state"] == "cancelled"
    assert stats()["delayed"] == 1
    assert call(v2("DELETE", f"/jobs/{retrying}"))[1]["state"] == "cancelled"
    assert stats()["delayed"] == 0  # it no longer waits for a retry
    event, result = run_jobs(cloud)  # its redelivery is dropped too
    assert [json.loads(r["body"])["id"] for r in event["Records"]] == [retrying] and result["batchItemFailures"] == []
    assert rest_get(f"/jobs/{retrying}")[1]["attempts"] == 1
    assert run_jobs(cloud)[0]["Records"] == []
    done = post({"message": "done"})[1]["jobId"]
    run_jobs(cloud)
    status, body, _ = call(v2("DELETE", f"/jobs/{done}"))
    assert (status, body["code"], body["details"]) == (409, "conflict", {"state": "completed"})
    assert call(v2("DELETE", f"/jobs/{waiting}"))[1]["details"] == {"state": "cancelled"}
    assert call(v2("DELETE", "/jobs/nope"))[0] == 404
    assert stats()["completed"] == 1 and stats()["failed"] == 0


def test_each_named_queue_is_its_own_sqs_queue_event_source_and_counters_and_pauses_its_mapping(cloud):
    slow = post({"type": "sleep", "seconds": 0})[1]["jobId"]
    quick = post({"message": "quick"})[1]["jobId"]
    assert slow.startswith("slow.") and quick.startswith("default.")
    slow_event, _ = run_jobs(cloud, queue="SlowJobsQueue")  # the slow queue's trigger sees only its job
    assert [json.loads(r["body"])["id"] for r in slow_event["Records"]] == [slow]
    assert slow_event["Records"][0]["eventSourceARN"] == cloud.names["SlowJobsQueue.Arn"]
    assert rest_get(f"/jobs/{slow}")[1]["state"] == "completed" and rest_get(f"/jobs/{quick}")[1]["state"] == "queued"
    figures = stats()
    assert (figures["queues"]["slow"]["completed"], figures["queues"]["default"]["waiting"]) == (1, 1)
    assert figures["queues"]["default"]["completed"] == 0 and figures["completed"] == 1
    assert figures["queues"]["slow"]["dlq"] is None and figures["dlq"] == 0  # one SQS DLQ takes every queue's

    assert cloud.mapping_state("JobsFunctionSlowJobs") == "Enabled"
    status, paused, _ = call(v2("POST", "/queues/slow/pause"))
    assert (status, paused) == (200, {"queue": "slow", "paused": True})
    assert cloud.mapping_state("JobsFunctionSlowJobs") == "Disabled"  # Lambda stops receiving its messages
    assert cloud.mapping_state("JobsFunctionJobs") == "Enabled"
    assert stats()["queues"]["slow"]["paused"] is True and stats()["queues"]["default"]["paused"] is False
    assert post({"type": "sleep", "seconds": 0})[0] == 202  # still accepted
    call(v2("POST", "/queues/slow/resume"))
    assert cloud.mapping_state("JobsFunctionSlowJobs") == "Enabled" and stats()["queues"]["slow"]["paused"] is False


def test_a_delayed_job_on_sqs_waits_out_its_delay_seconds_and_longer_delays_are_refused(cloud):
    status, accepted, _ = post({"message": "later", "delay": 2})
    assert (status, accepted["status"]) == (202, "scheduled")
    record = rest_get(f"/jobs/{accepted['jobId']}")[1]
    assert record["state"] == "scheduled" and record["runAt"] > record["createdAt"]
    assert stats()["delayed"] == 1
    assert run_jobs(cloud)[0]["Records"] == []  # not delivered before its time
    time.sleep(max(0.0, record["runAt"] - time.time()))
    # SQS counts DelaySeconds in whole seconds from the send: delivered within a second of runAt.
    deadline = time.monotonic() + 5
    while not (delivered := run_jobs(cloud))[0]["Records"] and time.monotonic() < deadline:
        time.sleep(0.1)
    event, result = delivered
    assert len(event["Records"]) == 1 and result == {"batchItemFailures": []}
    assert rest_get(f"/jobs/{accepted['jobId']}")[1]["state"] == "completed"
    status, body, _ = post({"message": "too late", "delay": 901})
    assert (status, body["code"], body["details"][0]["field"]) == (422, "validation_error", "delay")
    assert "DelaySeconds" in body["message"]
    waiting = post({"message": "cancel me", "delay": 60})[1]["jobId"]
    assert call(v2("DELETE", f"/jobs/{waiting}"))[1]["state"] == "cancelled"


def test_a_priority_is_refused_on_sqs_naming_the_field(cloud):
    status, body, _ = post({"message": "urgent", "priority": 9})
    assert (status, body["code"], body["details"][0]["field"]) == (422, "validation_error", "priority")
    assert post({"message": "plain", "priority": 5})[0] == 202
