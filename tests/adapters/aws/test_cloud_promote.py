"""Promote and progress on the cloud pairing (SQS + DynamoDB in moto, the Lambda handlers): a promoted
job runs from a new message while its delayed one is dropped by generation; progress goes to the record."""

import json
import time

from adapters.aws.job_table import stale
from functions.models import JobRecord, JobState
from tests.adapters.aws.lambda_events import call, post, rest_get, run_jobs, v2


def promote(job_id):
    return call(v2("POST", f"/jobs/{job_id}/promote"))


def test_a_retrying_job_runs_now_from_a_new_message_and_its_delayed_one_is_dropped(cloud):
    job_id = post({"message": "boom", "shouldFail": True})[1]["jobId"]
    run_jobs(cloud)  # attempt 1 fails: its message comes back in 2 s (JOB_BACKOFF_BASE)
    assert rest_get(f"/jobs/{job_id}")[1]["state"] == "retrying"
    delayed = call(v2("GET", "/queue/stats"))[1]["delayed"]
    status, record, _ = promote(job_id)
    assert (status, record["state"], record["promotions"], record["nextAttemptAt"]) == (200, "queued", 1, None)
    assert call(v2("GET", "/queue/stats"))[1]["delayed"] == delayed - 1  # no longer counted as waiting a retry
    event, _ = run_jobs(cloud)  # at once, not in 2 s
    assert [json.loads(r["body"])["generation"] for r in event["Records"]] == [1]
    job = rest_get(f"/jobs/{job_id}")[1]
    assert (job["state"], job["attempts"]) == ("retrying", 2)  # the next attempt, counted on from the record
    assert [(e["attempt"], e["error"]) for e in job["errors"]] == [(n, "JobFailed: Job failed on purpose: boom")
                                                                   for n in (1, 2)]  # each attempt's, oldest first
    time.sleep(2.2)  # the first message is visible again: from before the promotion, it is dropped
    event, result = run_jobs(cloud)
    assert [json.loads(r["body"]).get("generation") for r in event["Records"]] == [None]
    assert result == {"batchItemFailures": []}  # deleted, not run
    assert rest_get(f"/jobs/{job_id}")[1]["attempts"] == 2


def test_a_scheduled_job_runs_now_and_only_waiting_jobs_are_promoted(cloud):
    job_id = post({"message": "later", "delay": 600})[1]["jobId"]
    assert run_jobs(cloud)[0]["Records"] == []  # delayed by SQS
    status, record, _ = promote(job_id)
    assert (status, record["state"], record["runAt"]) == (200, "queued", None)
    event, result = run_jobs(cloud)
    assert len(event["Records"]) == 1 and result == {"batchItemFailures": []}
    assert rest_get(f"/jobs/{job_id}")[1]["state"] == "completed"
    status, body, _ = promote(job_id)
    assert (status, body["code"], body["details"]) == (409, "conflict", {"state": "completed"})
    assert promote("default.nosuch")[0] == 404


def test_a_message_from_before_a_promotion_is_stale_unless_the_promotion_was_not_sent():
    record = JobRecord(id="default.j", type="noop", payload={}, state=JobState.queued, maxAttempts=4, createdAt=1,
                       updatedAt=1, promotions=1)
    old = record.model_copy(update={"promotions": 0})
    assert stale(old, record) and not stale(record, record)
    assert not stale(old, record.model_copy(update={"state": JobState.pending}))  # its send may have failed


def test_progress_is_stored_with_the_record_and_not_after_the_outcome(cloud):
    job_id = post({"type": "sleep", "seconds": 0.3})[1]["jobId"]
    run_jobs(cloud, queue="SlowJobsQueue")
    job = rest_get(f"/jobs/{job_id}")[1]
    assert (job["state"], job["progress"], job["progressNote"]) == ("completed", 1.0, "0.3 of 0.3 s")
    listed = rest_get("/jobs", {"state": ["completed"]})[1]["items"]
    assert [j["progress"] for j in listed if j["id"] == job_id] == [1.0]
    from adapters import aws_lambda

    aws_lambda._jobs_runner().jobs.progress(job_id, 0.2, "late")  # finished: nothing written
    assert rest_get(f"/jobs/{job_id}")[1]["progress"] == 1.0


def test_a_replay_keeps_the_generation_so_a_delayed_message_from_before_stays_dropped(cloud, monkeypatch):
    from adapters import aws_lambda

    monkeypatch.setenv("JOB_MAX_RETRIES", "1")
    job_id = post({"message": "boom", "shouldFail": True})[1]["jobId"]
    run_jobs(cloud)  # attempt 1 fails: this message comes back in 2 s
    assert promote(job_id)[0] == 200
    run_jobs(cloud)  # attempt 2, from the promotion's message: dead
    assert rest_get(f"/jobs/{job_id}")[1]["state"] == "dead"
    monkeypatch.setenv("JOB_BACKOFF_BASE", "60")  # the replay's own retry waits long after this test
    aws_lambda._jobs_runner.cache_clear()
    assert call(v2("POST", f"/dlq/{job_id}/replay"))[0] == 202
    run_jobs(cloud)  # the replay's attempt 1 fails
    assert rest_get(f"/jobs/{job_id}")[1]["promotions"] == 1  # kept through the replay
    time.sleep(2.2)
    event, result = run_jobs(cloud)  # the first message, from before the promotion
    assert [json.loads(r["body"]).get("generation") for r in event["Records"]] == [None]
    job = rest_get(f"/jobs/{job_id}")[1]
    assert (job["state"], job["attempts"]) == ("retrying", 1)  # dropped, not run
