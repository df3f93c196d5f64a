"""POST /jobs/{id}/promote on the Redis pairing, and jobs' progress: a scheduled or retrying job starts
now, its schedule entry moved (one copy runs); progress stored with the record while the job runs."""

import time

import pytest

from adapters.redis import keys
from adapters.wiring import configure_consumer
from functions import routes
from functions.attempts import Backoff
from functions.errors import Conflict, NotFound
from tests.adapters.huey.steps import huey, slow, submit, work_one

QUEUE = keys.queue_keys("default")


@pytest.fixture(autouse=True)
def consumer(settings):
    return configure_consumer(settings)


def promote(ports, job_id):
    return routes.promote_job(job_id, ports.jobs, time.time())


def test_a_scheduled_job_starts_now_and_runs_once(ports):
    client = ports.redis.client
    job_id = submit(ports, {"message": "later", "shouldFail": False, "delay": 3600, "priority": 8})
    assert huey.dequeue() is None  # an hour away
    record = promote(ports, job_id)
    assert (record.state, record.runAt, record.promotions) == ("queued", None, 1)
    assert client.zcard(QUEUE.schedule) == 0 and client.llen(QUEUE.priority_list(8)) == 1  # moved, its priority kept
    assert [r.id for r in ports.jobs.list_jobs(["queued"], ["default"], None, 10, None)[0]] == [job_id]
    assert ports.jobs.list_jobs(["scheduled"], ["default"], None, 10, None)[0] == []
    assert work_one().id == job_id
    assert ports.jobs.get(job_id).state == "completed"
    assert huey.dequeue() is None and client.zcard(QUEUE.schedule) == 0  # no second copy anywhere
    with pytest.raises(Conflict) as err:
        promote(ports, job_id)
    assert err.value.status == 409 and err.value.details == {"state": "completed"}


def test_a_retrying_job_starts_its_next_attempt_now(ports):
    client = ports.redis.client
    huey.backoff = Backoff(60.0)  # configure_consumer sets it again for the next test
    job_id = submit(ports, {"message": "boom", "shouldFail": True})
    work_one()
    retrying = ports.jobs.get(job_id)
    assert retrying.state == "retrying" and retrying.nextAttemptAt > time.time() + 50
    assert client.zcard(QUEUE.schedule) == 1
    record = promote(ports, job_id)
    assert (record.state, record.nextAttemptAt, record.attempts, record.promotions) == ("queued", None, 1, 1)
    assert client.zcard(QUEUE.schedule) == 0 and client.llen(QUEUE.list) == 1
    assert work_one().id == job_id  # long before its backoff ends
    record = ports.jobs.get(job_id)
    assert (record.state, record.attempts) == ("retrying", 2)  # counted as the next attempt
    boom = "JobFailed: Job failed on purpose: boom"
    assert [(e.attempt, e.error) for e in record.errors] == [(1, boom), (2, boom)]  # each attempt's, oldest first
    assert client.zcard(QUEUE.schedule) == 1 and client.llen(QUEUE.list) == 0


def test_a_retry_already_due_is_promoted_where_it_waits(ports):
    """Its message moved to the queue (due) but not claimed yet: the record says queued, one copy waits."""
    client = ports.redis.client
    job_id = submit(ports, {"message": "boom", "shouldFail": True})
    work_one()
    data = client.zrange(QUEUE.schedule, 0, 0)[0]
    client.zrem(QUEUE.schedule, data)
    client.lpush(QUEUE.list, data)  # what move_due does when the retry comes due
    assert promote(ports, job_id).state == "queued"
    assert client.llen(QUEUE.list) == 1 and client.zcard(QUEUE.schedule) == 0


@pytest.mark.parametrize("body, state", [({"message": "now", "shouldFail": False}, "queued")])
def test_only_a_waiting_for_time_job_is_promoted(ports, body, state):
    job_id = submit(ports, body)
    with pytest.raises(Conflict) as err:
        promote(ports, job_id)
    assert err.value.details == {"state": state}
    with pytest.raises(NotFound):
        promote(ports, "default.nosuchjob")
    cancelled = submit(ports, {"message": "x", "shouldFail": False, "delay": 60})
    routes.cancel_job(cancelled, ports.jobs, time.time())
    with pytest.raises(Conflict) as err:
        promote(ports, cancelled)
    assert err.value.details == {"state": "cancelled"}


def test_a_record_scheduled_by_an_older_version_is_left_to_its_time(ports):
    job_id = submit(ports, {"message": "old", "shouldFail": False, "delay": 60})
    ports.redis.client.hdel(QUEUE.job(job_id), "scheduleScore")  # as records written before promote existed
    with pytest.raises(Conflict) as err:
        promote(ports, job_id)
    assert "older forkline" in str(err.value)
    assert ports.jobs.get(job_id).state == "scheduled" and ports.redis.client.zcard(QUEUE.schedule) == 1


def test_progress_is_stored_while_the_job_runs_and_the_last_report_kept(ports):
    job_id = submit(ports, {"type": "sleep", "seconds": 0.6})
    slow_keys = keys.queue_keys("slow")
    seen = []
    task = slow.dequeue()
    import threading

    worker = threading.Thread(target=slow.execute, args=(task,))
    worker.start()
    deadline = time.monotonic() + 5
    while worker.is_alive() and time.monotonic() < deadline:
        seen.append(ports.redis.client.hget(slow_keys.job(job_id), "progress"))
        time.sleep(0.05)
    worker.join(5)
    slow.storage.flush()
    values = [float(v) for v in seen if v is not None]
    assert values and values == sorted(values) and 0 < values[0] < 1  # moving up while it runs
    assert len(set(values)) <= 0.6 / 0.25 + 2  # throttled: a report every 50 ms, a write every 250 ms
    record = ports.jobs.get(job_id)
    assert (record.state, record.progress, record.progressNote) == ("completed", 1.0, "0.6 of 0.6 s")


def test_a_progress_report_after_the_outcome_writes_nothing(ports):
    job_id = submit(ports, {"message": "x", "shouldFail": False})
    work_one()
    store = ports.jobs.store_for(job_id)
    store.progress(job_id, 0.5, "late")
    store.progress("default.gone", 0.5, "late")
    assert ports.jobs.get(job_id).progress is None
    assert not ports.redis.client.exists(QUEUE.job("default.gone"))
