"""The DynamoDB job table on moto: records round-trip, moves are conditional, retention is kept."""

import time

import pytest

from adapters.aws.job_items import decode_item, encode_item, expires_at
from adapters.aws.job_table import JobTable
from adapters.aws.jobs import SQSJobQueue
from functions import routes
from functions.models import DeadJob, JobRecord, JobState


def pairing_over(cloud, retention: int) -> SQSJobQueue:
    """The pairing over the template's table and queue, with JOB_RETENTION `retention` seconds."""
    return SQSJobQueue({"default": cloud.jobs_url, "slow": cloud.names["SlowJobsQueue"]},
                       JobTable(cloud.table, retention=retention))


@pytest.fixture
def pairing(cloud):
    return pairing_over(cloud, 3600)


@pytest.fixture
def short_lived(cloud):
    return pairing_over(cloud, 1)


def record(**fields) -> JobRecord:
    base = dict(id="j1", type="message", payload={"message": "é", "n": [1, 2.5]}, state=JobState.queued,
                maxAttempts=4, createdAt=1700000000.125, updatedAt=1700000000.125)
    return JobRecord(**{**base, **fields})


def test_a_record_round_trips_through_an_item():
    job = record(result={"ok": True}, lastError="E", nextAttemptAt=1.5, requestId="r-1", replays=2, dlqPending=True)
    assert decode_item(encode_item(job)) == job
    assert decode_item(encode_item(record())) == record()


def test_an_expiry_rounds_up_to_the_next_whole_second():
    assert expires_at(1700000000.01, 1) == {"N": "1700000002"}
    assert expires_at(1700000000.0, 1) == {"N": "1700000001"}


def test_a_finished_job_moves_once_and_counts_once(pairing):
    job = record()
    pairing.submit(job)
    assert pairing.start(job, 1, time.time()).state == JobState.active
    pairing.completed("j1", {"r": 1}, time.time())
    pairing.completed("j1", {"r": 2}, time.time())  # a second delivery's outcome: no move, no count
    pairing.dead(DeadJob(jobId="j1", type="message", payload={}, error="late", attempts=1, failedAt=1.0), True)
    assert pairing.get("j1").result == {"r": 1}
    assert pairing.start(job, 2, time.time()) is None  # finished: not run again
    assert pairing.table.totals(["default"]) == {"default": {"completed": 1, "failed": 0, "retrying": 0,
                                                             "paused": 0}}


def test_records_and_keys_past_their_retention_read_as_absent(short_lived):
    job = record()
    assert routes.submit_job({"message": "x"}, short_lived, lambda: "k1-job", time.time(), 4,
                             idempotency_key="order-1")[1] is True
    short_lived.submit(job)
    short_lived.start(job, 1, time.time())
    short_lived.completed("j1", None, time.time())
    assert short_lived.get("j1") is not None
    time.sleep(3.1)  # past JOB_RETENTION (1 s; TTLs are whole seconds): the sweep itself comes later
    assert short_lived.get("j1") is None
    accepted, created = routes.submit_job({"message": "x"}, short_lived, lambda: "k1-again", time.time(), 4,
                                          idempotency_key="order-1")
    assert (accepted.jobId, created) == ("default.k1-again", True)  # the key expired: a new job
