"""The Huey queue on a real Redis: outcomes, retries with backoff, DLQ, leases."""

import time

import pytest

from adapters.redis import keys
from adapters.wiring import configure_consumer
from functions import dead_letters
from functions.attempts import Backoff
from tests.adapters.huey.steps import huey, promote_due, submit, work_one

DEFAULT = keys.queue_keys("default")


@pytest.fixture(autouse=True)
def consumer(settings):
    """The Huey instance configured as a consumer process configures it."""
    return configure_consumer(settings)


def test_a_job_completes_and_is_counted_once(ports):
    job_id = submit(ports, {"message": "hi", "shouldFail": False})
    assert ports.jobs.counts()["default"]["waiting"] == 1
    work_one()
    record = ports.jobs.get(job_id)
    assert record.state == "completed" and record.result == {"processed": "hi"} and record.attempts == 1
    counts = ports.jobs.counts()["default"]
    assert counts == {"waiting": 0, "active": 0, "completed": 1, "failed": 0, "delayed": 0, "dlqPending": 0,
                      "paused": 0}
    ttl = ports.redis.client.ttl(keys.job_key(job_id))
    assert 0 < ttl <= 86400  # completed records expire after the retention


def test_failures_retry_with_exponential_backoff_then_go_to_the_dlq(ports, settings):
    job_id = submit(ports, {"message": "boom", "shouldFail": True})
    delays = []
    for attempt in (1, 2, 3):
        before = time.time()
        work_one()
        record = ports.jobs.get(job_id)
        assert record.state == "retrying" and record.attempts == attempt
        assert "Job failed on purpose" in record.lastError
        assert record.updatedAt >= before
        delays.append(round(record.nextAttemptAt - record.updatedAt, 1))  # both set when the attempt failed
        assert ports.jobs.counts()["default"]["delayed"] == 1
        time.sleep(max(0.0, record.nextAttemptAt - time.time()) + 0.05)
        promote_due()
    base = settings.job_backoff_base
    assert delays == [base, base * 2, base * 4]
    work_one()
    record = ports.jobs.get(job_id)
    assert record.state == "dead" and record.attempts == 4
    entry = ports.dlq.get(job_id)
    assert entry.attempts == 4 and "JobFailed" in entry.error and "Traceback" in entry.traceback
    assert entry.payload == {"message": "boom", "shouldFail": True}
    assert ports.jobs.counts()["default"] == {"waiting": 0, "active": 0, "completed": 0, "failed": 1, "delayed": 0,
                                   "dlqPending": 0, "paused": 0}
    assert ports.dlq.count() == 1


def test_a_job_waiting_for_its_retry_is_in_redis_not_in_a_process(ports):
    job_id = submit(ports, {"message": "boom", "shouldFail": True})
    work_one()
    assert ports.redis.client.zcard(DEFAULT.schedule) == 1 and ports.redis.client.zcard(DEFAULT.leases) == 0
    promote_due(now_offset=0)  # not due yet
    assert ports.jobs.counts()["default"]["waiting"] == 0
    promote_due(now_offset=60)
    assert ports.jobs.counts()["default"]["waiting"] == 1 and ports.jobs.get(job_id).state == "retrying"


def test_a_claimed_job_whose_consumer_died_is_requeued_after_its_lease(ports, settings):
    job_id = submit(ports, {"message": "hi", "shouldFail": False})
    task = huey.dequeue()  # claimed, then the "consumer" dies: no execute, no ack
    assert ports.jobs.get(job_id).state == "active"
    assert ports.jobs.counts()["default"]["active"] == 1
    huey.storage._held.clear()  # a dead process renews nothing
    promote_due()
    assert ports.jobs.counts()["default"]["waiting"] == 0, "requeued before its lease expired"
    time.sleep(settings.job_lease + 0.2)
    promote_due()
    assert ports.jobs.counts()["default"]["waiting"] == 1 and ports.jobs.counts()["default"]["active"] == 0
    again = work_one()
    assert again.id == task.id
    record = ports.jobs.get(job_id)
    assert record.state == "completed" and record.attempts == 2


def test_renewed_leases_do_not_expire(ports, settings):
    submit(ports, {"message": "hi", "shouldFail": False})
    task = huey.dequeue()
    leases = ports.redis.client
    deadline = leases.zscore(DEFAULT.leases, task.running_job.message)
    for _ in range(3):
        time.sleep(0.3)
        assert huey.storage.renew_leases() == 1
        renewed = leases.zscore(DEFAULT.leases, task.running_job.message)
        # pushed to a full lease from now (Redis's clock), later than before by the time that passed
        assert renewed >= huey.storage.clock() + settings.job_lease - 0.5 and renewed >= deadline + 0.25
        deadline = renewed
        promote_due()
    assert ports.jobs.counts()["default"]["active"] == 1 and ports.jobs.counts()["default"]["waiting"] == 0


def test_a_poison_job_goes_to_the_dlq_after_the_retry_limit(ports, settings):
    job_id = submit(ports, {"message": "hi", "shouldFail": False}, max_attempts=settings.max_attempts)
    client = ports.redis.client
    for _ in range(settings.max_attempts):  # each attempt "kills the consumer"
        assert huey.dequeue() is not None
        huey.storage._held.clear()
        client.zadd(DEFAULT.leases, {m: 0 for m in client.zrange(DEFAULT.leases, 0, -1)})  # lease expired
        promote_due()
    assert huey.dequeue() is None  # buried instead of run a fifth time
    record = ports.jobs.get(job_id)
    assert record.state == "dead" and "consumer lost" in record.lastError
    assert ports.dlq.get(job_id).attempts == settings.max_attempts
    assert ports.jobs.counts()["default"]["failed"] == 1 and ports.jobs.counts()["default"]["active"] == 0


def test_a_duplicate_of_a_finished_job_is_not_run_again(ports):
    job_id = submit(ports, {"message": "hi", "shouldFail": False})
    message = ports.redis.client.lindex(DEFAULT.list, 0)
    work_one()
    ports.redis.client.lpush(DEFAULT.list, message)  # a redelivered copy
    assert huey.dequeue() is None
    assert ports.jobs.counts()["default"]["completed"] == 1 and ports.jobs.get(job_id).attempts == 1


def test_release_held_gives_jobs_back_first_in_line(ports):
    first = submit(ports, {"message": "1", "shouldFail": False})
    second = submit(ports, {"message": "2", "shouldFail": False})
    third = submit(ports, {"message": "3", "shouldFail": False})
    huey.storage.batch = 2  # claims 1 and 2; 2 waits in the local buffer
    task = huey.dequeue()
    assert task.id == first
    assert huey.storage.release_held() == 2  # the running job and the buffered one
    again = [huey.dequeue().id for _ in range(3)]
    assert set(again[:2]) == {first, second} and again[2] == third  # given back ahead of the rest


def test_replay_from_the_dlq_runs_the_job_again(ports):
    job_id = submit(ports, {"message": "boom", "shouldFail": True}, max_attempts=1)
    work_one()
    assert ports.dlq.count() == 1
    dead_letters.replay_one(job_id, ports.dlq, ports.jobs, time.time(), max_attempts=1)
    assert ports.dlq.count() == 0
    record = ports.jobs.get(job_id)
    assert record.state == "queued" and record.attempts == 0
    work_one()
    assert ports.jobs.get(job_id).state == "dead" and ports.jobs.get(job_id).attempts == 1
    assert ports.jobs.counts()["default"]["failed"] == 2


def test_runtime_is_configured_from_settings(ports, settings):
    assert huey.max_attempts == settings.max_attempts
    assert huey.backoff == Backoff(settings.job_backoff_base, settings.job_backoff_max, settings.job_backoff_jitter)
    assert huey.storage.lease == settings.job_lease


def test_retry_delays_are_capped_by_job_backoff_max(ports, settings):
    capped = settings.model_copy(update={"job_backoff_max": 0.3})
    configure_consumer(capped)
    job_id = submit(ports, {"message": "boom", "shouldFail": True})
    delays = []
    for _ in range(3):
        before = time.time()
        work_one()
        record = ports.jobs.get(job_id)
        assert record.updatedAt >= before
        delays.append(round(record.nextAttemptAt - record.updatedAt, 1))  # both set when the attempt failed
        time.sleep(max(0.0, record.nextAttemptAt - time.time()) + 0.05)
        promote_due()
    assert delays == [0.2, 0.3, 0.3]  # base 0.2: 0.2, 0.4 -> 0.3, 0.8 -> 0.3


def test_outcomes_wait_at_most_their_hold_to_share_a_round_trip(ports):
    ids = [submit(ports, {"message": str(i), "shouldFail": False}) for i in range(4)]
    # Claims 3 at a time; an outcome waits up to its hold: a minute first, so that "not yet" holds on a
    # busy machine, then 0.3 s, to see it recorded once the hold has passed.
    huey.storage.batch, huey.storage.hold = 3, 60.0
    first = huey.dequeue()
    huey.execute(first)
    second = huey.dequeue()  # from the buffer: no round trip, the first outcome waits
    assert (first.id, second.id) == tuple(ids[:2])
    assert ports.jobs.get(first.id).state == "active"
    assert ports.redis.client.zscore(DEFAULT.leases, first.running_job.message) is not None  # still leased
    huey.storage.flush_due()
    assert ports.jobs.get(first.id).state == "active"  # not due yet
    huey.storage.hold = 0.3
    time.sleep(0.35)
    huey.storage.flush_due()  # what the consumer's outcomes thread does every hold
    assert ports.jobs.get(first.id).state == "completed"
    assert ports.redis.client.zscore(DEFAULT.leases, first.running_job.message) is None
    huey.execute(second)
    third = huey.dequeue()  # the last buffered message
    huey.execute(third)
    fourth = huey.dequeue()  # the buffer is empty: this claim carries both waiting outcomes
    assert [ports.jobs.get(t.id).state for t in (second, third, fourth)] == ["completed", "completed", "active"]
    huey.execute(fourth)
    huey.storage.flush()
    assert ports.jobs.counts()["default"]["completed"] == 4


def test_a_retry_is_claimed_at_its_time_by_a_waiting_consumer_not_at_a_scheduler_tick(ports, settings):
    """Attempt n + 1 is claimable JOB_BACKOFF_BASE * 2^(n-1) s after attempt n failed: the idle claim
    waits until the schedule's next entry is due, and the claim moves it (no scheduler runs here)."""
    timed = settings.model_copy(update={"job_backoff_base": 0.6})
    configure_consumer(timed)
    job_id = submit(ports, {"message": "boom", "shouldFail": True})
    task = huey.dequeue()
    for attempt, delay in ((1, 0.6), (2, 1.2)):
        assert (task.id, task.running_job.attempt) == (job_id, attempt)
        huey.execute(task)  # fails: the retry is scheduled delay s from now
        failed_at = time.monotonic()
        task = None
        while task is None and time.monotonic() - failed_at < 5:  # as Huey's worker loop calls it
            task = huey.dequeue()  # waits (BLMOVE, at most 1 s a call) until it is due, then claims it
        waited = time.monotonic() - failed_at
        assert task is not None and task.id == job_id, task
        # never early; late by at most a claim round trip (0.25 s, with room for a busy machine's 0.5 s)
        assert delay - 0.05 <= waited <= delay + 0.5, (attempt, waited)
    print(f"retry claimed after {waited:.3f} s (due after {delay} s)")
