"""DELETE /jobs/{id} on the Redis pairing: cancel in every state, and the consumer drops a cancelled job."""

import time

import pytest

from adapters.redis import keys
from adapters.wiring import configure_consumer
from functions import routes
from functions.errors import Conflict, NotFound
from tests.adapters.huey.steps import huey, promote_due, submit, work_one


@pytest.fixture(autouse=True)
def consumer(settings):
    return configure_consumer(settings)


def cancel(ports, job_id):
    return routes.cancel_job(job_id, ports.jobs, time.time())


def test_a_waiting_job_is_cancelled_and_never_runs(ports):
    cancelled = submit(ports, {"message": "never", "shouldFail": False})
    runs = submit(ports, {"message": "runs", "shouldFail": False})
    record = cancel(ports, cancelled)
    assert record.state == "cancelled" and record.finishedAt is not None and record.attempts == 0
    assert ports.jobs.counts()["default"]["waiting"] == 2  # its message stays until a consumer claims it
    task = work_one()  # the claim drops the cancelled message and takes the next
    assert task.id == runs
    assert ports.jobs.get(cancelled).state == "cancelled" and ports.jobs.get(cancelled).attempts == 0
    assert ports.jobs.counts()["default"] == {"waiting": 0, "active": 0, "completed": 1, "failed": 0, "delayed": 0,
                                   "dlqPending": 0, "paused": 0}
    assert 0 < ports.redis.client.ttl(keys.job_key(cancelled)) <= 86400  # kept like a completed record


def test_a_job_waiting_for_its_retry_is_cancelled_and_not_retried(ports):
    job_id = submit(ports, {"message": "boom", "shouldFail": True})
    work_one()
    record = ports.jobs.get(job_id)
    assert record.state == "retrying"
    assert cancel(ports, job_id).state == "cancelled"
    time.sleep(max(0.0, record.nextAttemptAt - time.time()) + 0.05)
    promote_due()  # the retry is due: its message is back on the queue
    queue = keys.queue_keys("default")
    client = ports.redis.client
    assert client.llen(queue.list) == 1 and client.zcard(queue.schedule) == 0
    assert huey.dequeue() is None  # and dropped at the claim
    assert client.llen(queue.list) == 0 and client.zcard(queue.leases) == 0  # gone, not held
    record = ports.jobs.get(job_id)
    assert (record.state, record.attempts, ports.dlq.count()) == ("cancelled", 1, 0)


@pytest.mark.parametrize("should_fail, state", [(False, "completed"), (True, "dead")])
def test_a_finished_job_cannot_be_cancelled(ports, should_fail, state):
    job_id = submit(ports, {"message": "x", "shouldFail": should_fail}, max_attempts=1)
    work_one()
    with pytest.raises(Conflict) as err:
        cancel(ports, job_id)
    assert err.value.status == 409 and err.value.details == {"state": state}
    assert ports.jobs.get(job_id).state == state


def test_a_running_job_or_a_cancelled_one_cannot_be_cancelled_and_an_unknown_one_is_404(ports):
    job_id = submit(ports, {"message": "hi", "shouldFail": False})
    task = huey.dequeue()  # claimed: it is active
    with pytest.raises(Conflict) as err:
        cancel(ports, job_id)
    assert err.value.details == {"state": "active"}
    huey.execute(task)
    huey.storage.flush()
    assert ports.jobs.get(job_id).state == "completed"  # the attempt ran to its end
    other = submit(ports, {"message": "x", "shouldFail": False})
    cancel(ports, other)
    with pytest.raises(Conflict) as err:
        cancel(ports, other)
    assert err.value.details == {"state": "cancelled"}
    with pytest.raises(NotFound):
        cancel(ports, "no-such-job")
