"""`forkline serve` + `forkline worker` with DLQ_BACKEND=sqs against moto's server on loopback."""

import signal
import time

import boto3
import pytest
import redis
from moto.server import ThreadedMotoServer

from adapters.redis import keys
from harness.processes import Forkline, wait_until
from local.runtime.redis_server import free_port
from tests.stats import template_figures

DEFAULT = keys.queue_keys("default")

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def moto_sqs():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    dlq_url = client.create_queue(QueueName="forkline-dlq")["QueueUrl"]
    yield endpoint, client, dlq_url
    server.stop()


def test_a_failing_job_reaches_the_sqs_dlq_and_is_replayed(tmp_path, redis_url, moto_sqs):
    endpoint, client, dlq_url = moto_sqs
    env = {**AWS, "REDIS_URL": redis_url, "DLQ_BACKEND": "sqs", "DLQ_SQS_QUEUE_URL": dlq_url,
           "AWS_ENDPOINT_URL": endpoint, "JOB_BACKOFF_BASE": "0.1", "WEB_CONCURRENCY": "1"}
    api = Forkline("serve", tmp_path, env).start()
    worker = Forkline("worker", tmp_path, env).start(wait_http=False)
    try:
        ok = api.request("POST", "/jobs", {"message": "fine", "shouldFail": False})[2]["jobId"]
        bad = api.request("POST", "/jobs", {"message": "nope", "shouldFail": True})[2]["jobId"]
        wait_until(lambda: buried(api, bad), 30, 0.2, "job dead and in the DLQ")
        assert api.request("GET", f"/jobs/{ok}")[2]["state"] == "completed"
        assert dlq_size(client, dlq_url) == 1
        stats = api.request("GET", "/queue/stats")[2]
        assert template_figures(stats) == {"waiting": 0, "active": 0, "completed": 1, "failed": 1, "delayed": 0,
                         "dlq": 1, "dlqPending": 0}
        listed = api.request("GET", "/dlq")[2]
        assert [e["jobId"] for e in listed["items"]] == [bad] and listed["items"][0]["attempts"] == 4
        assert "failed on purpose" in listed["items"][0]["error"]
        # With no consumer running, the replay's effect stands still long enough to be seen whole.
        assert worker.stop(signal.SIGTERM, timeout=30) == 0
        assert api.request("POST", f"/dlq/{bad}/replay")[0] == 202
        assert api.request("GET", "/dlq")[2]["total"] == 0 and dlq_size(client, dlq_url) == 0
        record = api.request("GET", f"/jobs/{bad}")[2]
        assert record["state"] == "queued" and record["attempts"] == 0
        assert api.request("GET", "/queue/stats")[2]["waiting"] == 1
        assert api.request("POST", f"/dlq/{bad}/replay")[0] == 404  # once only
        worker = Forkline("worker", tmp_path, env).start(wait_http=False)
        wait_until(lambda: buried(api, bad) and api.request("GET", "/queue/stats")[2]["failed"] == 2, 30, 0.2,
                   "replayed job dead again")
        stats = api.request("GET", "/queue/stats")[2]
        assert template_figures(stats) == {"waiting": 0, "active": 0, "completed": 1, "failed": 2, "delayed": 0,
                         "dlq": 1, "dlqPending": 0}
        assert dlq_size(client, dlq_url) == 1
        assert api.request("POST", "/dlq/unknown/replay")[0] == 404
    finally:
        assert worker.stop(signal.SIGTERM, timeout=30) == 0
        assert api.stop(signal.SIGTERM, timeout=30) == 0


def buried(api: Forkline, job_id: str) -> bool:
    """Dead and its DLQ entry written (the record is marked dead just before the put)."""
    record = api.request("GET", f"/jobs/{job_id}")[2]
    return record["state"] == "dead" and not record["dlqPending"]


def dlq_size(client, dlq_url: str) -> int:
    attrs = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages",
                                                                          "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def test_a_job_dead_while_the_sqs_dlq_is_gone_lands_there_with_its_error_once_it_is_back(
        tmp_path, redis_url, moto_sqs):
    endpoint, client, dlq_url = moto_sqs
    env = {**AWS, "REDIS_URL": redis_url, "DLQ_BACKEND": "sqs", "DLQ_SQS_QUEUE_URL": dlq_url,
           "AWS_ENDPOINT_URL": endpoint, "JOB_MAX_RETRIES": "0", "WEB_CONCURRENCY": "1"}
    api = Forkline("serve", tmp_path, env).start()
    worker = Forkline("worker", tmp_path, env).start(wait_http=False)
    try:
        client.delete_queue(QueueUrl=dlq_url)  # under the running consumer
        bad = api.request("POST", "/jobs", {"message": "nope", "shouldFail": True})[2]["jobId"]
        record = wait_until(lambda: (lambda r: r if r["state"] == "dead" else None)(
            api.request("GET", f"/jobs/{bad}")[2]), 30, 0.2, "job dead")
        assert record["dlqPending"] is True and "failed on purpose" in record["lastError"]
        stats = api.request("GET", "/queue/stats")
        assert stats[0] == 503  # counting the SQS DLQ needs the queue: unavailable, not a wrong number
        time.sleep(3)  # a few failed retries: the lease was released, the job is not run again
        assert "dlq_put_failed" in worker.output()
        assert redis.Redis.from_url(redis_url).zcard(DEFAULT.leases) == 0
        client.create_queue(QueueName="forkline-dlq")
        stats = wait_until(lambda: (lambda s: s if s.get("dlqPending") == 0 else None)(
            api.request("GET", "/queue/stats")[2]), 30, 0.5, "the pending entry put")
        assert stats["dlq"] == 1 and stats["failed"] == 1 and stats["active"] == 0
        [entry] = api.request("GET", "/dlq")[2]["items"]
        assert entry["jobId"] == bad and "failed on purpose" in entry["error"] and "Traceback" in entry["traceback"]
        assert entry["attempts"] == 1
        record = api.request("GET", f"/jobs/{bad}")[2]
        assert record["dlqPending"] is False and record["attempts"] == 1  # never run again
        assert "consumer lost" not in worker.output()
    finally:
        assert worker.stop(signal.SIGTERM, timeout=30) == 0
        assert api.stop(signal.SIGTERM, timeout=30) == 0
