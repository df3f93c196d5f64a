"""Time in queue on Redis: the claim says when each job became claimable (the wait the consumer
observes in forkline_job_wait_seconds), and the oldest waiting job per queue as a scrape reads it."""

import time

import pytest

from adapters.redis import keys
from adapters.wiring import configure_consumer
from functions import routes
from functions.attempts import Backoff
from tests.adapters.huey.steps import huey, promote_due, submit, work_one

QUEUE = keys.queue_keys("default")


class Waits:
    """A JobMetrics that keeps each start's wait."""

    def __init__(self):
        self.waits = []

    def job_started(self, job_type, waited=None):
        self.waits.append((job_type, waited))

    def job_finished(self, job_type, outcome, seconds):
        pass


@pytest.fixture(autouse=True)
def waits(settings):
    configure_consumer(settings)
    huey.metrics = recorded = Waits()  # configure_consumer sets it again for the next test
    return recorded


def test_a_jobs_wait_runs_from_its_submit_and_a_retrys_from_its_due_time(ports, waits):
    huey.backoff = Backoff(1.0)  # the retry is due a second after the failure
    job_id = submit(ports, {"message": "boom", "shouldFail": True})
    time.sleep(0.3)
    work_one()
    [(kind, waited)] = waits.waits
    assert kind == "message" and 0.3 <= waited < 2.0  # from its submit to its start
    record = ports.jobs.get(job_id)
    time.sleep(max(0.0, record.nextAttemptAt - time.time()) + 0.25)  # due a quarter second ago
    promote_due()
    work_one()
    assert 0.2 <= waits.waits[1][1] < 0.9  # from its due time, not from the failure a second before it


def test_the_oldest_waiting_job_per_queue(ports):
    client = ports.redis.client
    assert ports.jobs.oldest_waiting(time.time()) == {}
    first = submit(ports, {"message": "first", "shouldFail": False})
    submit(ports, {"message": "second", "shouldFail": False, "priority": 9})
    submit(ports, {"message": "later", "shouldFail": False, "delay": 600})  # not due: not waiting
    oldest = ports.jobs.oldest_waiting(time.time())
    assert list(oldest) == ["default"] and oldest["default"] == pytest.approx(ports.jobs.get(first).createdAt)
    routes.cancel_job(first, ports.jobs, time.time())  # its message stays until a claim drops it
    assert ports.jobs.oldest_waiting(time.time())["default"] > ports.jobs.get(first).createdAt
    while client.llen(QUEUE.list) or client.llen(QUEUE.priority_list(9)):
        huey.dequeue()  # claimed (the cancelled one dropped): nothing waits
    assert ports.jobs.oldest_waiting(time.time()) == {}


def test_a_due_retry_nobody_moved_counts_from_its_due_time(ports):
    job_id = submit(ports, {"message": "boom", "shouldFail": True})
    work_one()
    due = ports.jobs.get(job_id).nextAttemptAt
    assert ports.jobs.oldest_waiting(due - 0.05) == {}  # not due yet
    time.sleep(max(0.0, due - time.time()) + 0.1)
    assert ports.jobs.oldest_waiting(time.time())["default"] == pytest.approx(due)  # due, still in the schedule
