"""A DLQ that fails its put, and a Redis that cannot record a death: the job's error is kept,
its lease is not held forever, and the entry reaches the DLQ once it is back (real Redis, moto SQS)."""

import time

import pytest

from adapters.aws.dlq import SQSDLQ
from adapters.redis import keys
from adapters.wiring import configure_consumer
from harness.processes import wait_until
from tests.adapters.huey.steps import huey, submit, work_one

DEFAULT = keys.queue_keys("default")


@pytest.fixture
def sqs_dlq(settings, ports, aws):
    """The consumer's Huey with an SQS DLQ (moto), as DLQ_BACKEND=sqs builds it."""
    configure_consumer(settings)
    url = aws.create_queue(QueueName="forkline-dlq")["QueueUrl"]
    dlq = SQSDLQ(url)
    huey.configure(settings.redis_url, settings.job_lease, ports.jobs.stores["default"], dlq, 1,
                   settings.job_backoff_base,
                   settings.job_timeout)
    return aws, dlq


def test_a_failed_dlq_put_keeps_the_error_releases_the_lease_and_is_retried_until_it_lands(ports, sqs_dlq):
    aws, dlq = sqs_dlq
    aws.delete_queue(QueueUrl=dlq.queue_url)
    job_id = submit(ports, {"message": "boom", "shouldFail": True}, max_attempts=1)
    work_one()
    record = ports.jobs.get(job_id)
    assert record.state == "dead" and record.dlqPending is True
    assert "Job failed on purpose" in record.lastError
    assert ports.redis.client.zcard(DEFAULT.leases) == 0 and not huey.storage._held  # not held, not renewed
    assert ports.jobs.counts()["default"]["dlqPending"] == 1 and ports.jobs.counts()["default"]["failed"] == 1
    assert huey.outbox.retry(postpone=0.0) is True  # nothing due yet: the first retry waits a second
    ports.jobs.stores["default"].postpone_pending_dead(job_id, time.time())  # as if that second had passed
    assert huey.outbox.retry(postpone=0.0) is False  # the DLQ is still gone
    assert ports.jobs.get(job_id).dlqPending is True
    aws.create_queue(QueueName="forkline-dlq")
    assert huey.outbox.retry(postpone=0.0) is True
    entry = dlq.get(job_id)
    assert "Job failed on purpose" in entry.error and "Traceback" in entry.traceback and entry.attempts == 1
    assert ports.jobs.get(job_id).dlqPending is False and ports.jobs.counts()["default"]["dlqPending"] == 0
    assert ports.redis.client.hget(keys.job_key(job_id), "dlqEntry") is None
    assert huey.outbox.retry(postpone=0.0) is True and dlq.count() == 1  # put once
    assert huey.dequeue() is None  # the job was never run again


def test_an_entry_being_put_by_one_consumer_is_not_taken_by_another(ports, sqs_dlq):
    aws, dlq = sqs_dlq
    aws.delete_queue(QueueUrl=dlq.queue_url)
    job_id = submit(ports, {"message": "boom", "shouldFail": True}, max_attempts=1)
    work_one()
    held = ports.jobs.stores["default"].take_pending_dead(time.time(), hold=60)
    assert held == []  # held by the consumer that buried it
    first = ports.jobs.stores["default"].take_pending_dead(time.time() + 1.1, hold=60)  # its first retry is due
    assert [e.jobId for e in first] == [job_id]
    assert ports.jobs.stores["default"].take_pending_dead(time.time(), hold=60) == []  # held by the first taker
    ports.jobs.stores["default"].postpone_pending_dead(job_id, time.time() - 1)  # its put failed: due again
    assert [e.jobId for e in ports.jobs.stores["default"].take_pending_dead(time.time(), hold=60)] == [job_id]


def test_a_death_redis_cannot_record_is_held_with_its_lease_then_recorded(ports, sqs_dlq, redis_proc):
    _, dlq = sqs_dlq
    job_id = submit(ports, {"message": "boom", "shouldFail": True}, max_attempts=1)
    task = huey.dequeue()
    assert task is not None
    redis_proc.stop()  # Redis goes away while the job runs
    try:
        huey.execute(task)
        assert huey.outbox.held() == 1
        assert task.running_job.message in huey.storage._held  # its lease is renewed, not forgotten
        assert huey.outbox.retry(postpone=0.0) is False
    finally:
        redis_proc.start()  # back on its AOF: the lease and the record are still there
    # once the process's Redis breaker lets a call through again (at most its 1 s cooldown)
    wait_until(lambda: huey.outbox.retry(postpone=0.0), 5, 0.1, "the death recorded")
    assert huey.outbox.held() == 0 and not huey.storage._held
    record = ports.jobs.get(job_id)
    assert record.state == "dead" and "Job failed on purpose" in record.lastError and not record.dlqPending
    assert "Job failed on purpose" in dlq.get(job_id).error
    assert ports.redis.client.zcard(DEFAULT.leases) == 0
