"""Priorities within a queue, on a real Redis: higher first, first in first out within a priority, and
aging (one level per PRIORITY_AGING seconds waited) so a steady stream of high priorities cannot
starve a low one."""

import time

from adapters.redis import keys
from adapters.wiring import configure_consumer
from functions import dead_letters
from tests.adapters.huey.steps import promote_due, submit, work_one

DEFAULT = keys.queue_keys("default")


def default_huey(settings, ports, aging):
    hueys = {h.keys: h for h in configure_consumer(settings.model_copy(update={"priority_aging": aging}), ports)}
    return hueys[DEFAULT]


def test_priorities_order_a_backlog_higher_first_and_in_order_within_one(ports, settings):
    on = default_huey(settings, ports, aging=3600.0)  # no aging within this test
    low = [submit(ports, {"message": f"low {n}", "priority": 1}) for n in range(3)]
    mid = [submit(ports, {"message": f"mid {n}"}) for n in range(3)]  # the default, 5
    high = [submit(ports, {"message": f"high {n}", "priority": 9}) for n in range(3)]
    assert ports.jobs.counts()["default"]["waiting"] == 9 and ports.jobs.get(high[0]).priority == 9
    assert ports.redis.client.llen(DEFAULT.priority_list(9)) == 3 and ports.redis.client.llen(DEFAULT.list) == 3
    assert [work_one(on).id for _ in range(9)] == high + mid + low
    assert ports.jobs.counts()["default"]["completed"] == 9 and ports.jobs.counts()["default"]["waiting"] == 0


def test_a_waiting_job_gains_a_level_per_aging_period_so_it_is_not_starved(ports, settings):
    on = default_huey(settings, ports, aging=0.25)  # 4 levels a second
    old = submit(ports, {"message": "waited", "priority": 0})
    time.sleep(2.6)  # 0 + 2.6 / 0.25 = 10.4: above any fresh job (9 at most)
    fresh = [submit(ports, {"message": f"urgent {n}", "priority": 9}) for n in range(3)]
    assert [work_one(on).id for _ in range(4)] == [old, *fresh]


# A job keeps its priority on every path that puts its message back (the scripts read it from the record).
def backlog(ports, n=3):
    return [submit(ports, {"message": f"waiting {i}"}) for i in range(n)]  # the default priority, 5


def test_a_retry_comes_back_at_its_priority(ports, settings):
    on = default_huey(settings, ports, aging=3600.0)
    urgent = submit(ports, {"message": "boom", "shouldFail": True, "priority": 9}, max_attempts=2)
    assert work_one(on).id == urgent  # failed: its retry waits 0.2 s (JOB_BACKOFF_BASE in the tests)
    waiting = backlog(ports)
    record = ports.jobs.get(urgent)
    time.sleep(max(0.0, record.nextAttemptAt - time.time()) + 0.05)
    promote_due(on=on)
    client = ports.redis.client
    assert client.llen(DEFAULT.priority_list(9)) == 1 and client.llen(DEFAULT.list) == 3
    assert [work_one(on).id for _ in range(4)] == [urgent, *waiting]  # ahead of the backlog, as first
    assert ports.jobs.get(urgent).attempts == 2


def test_a_delayed_job_comes_back_at_its_priority_when_the_claim_moves_it(ports, settings):
    on = default_huey(settings, ports, aging=3600.0)
    later = submit(ports, {"message": "later", "delay": 0.3, "priority": 9})
    waiting = backlog(ports)
    time.sleep(0.35)
    assert [work_one(on).id for _ in range(4)] == [later, *waiting]  # moved by the claim itself, onto p9


def test_a_job_given_back_at_shutdown_keeps_its_priority_first_in_line(ports, settings):
    on = default_huey(settings, ports, aging=3600.0)
    on.storage.batch = 1
    urgent = submit(ports, {"message": "urgent", "priority": 9})
    held = on.dequeue()
    assert held.id == urgent
    waiting = backlog(ports)
    assert on.storage.release_held() == 1
    assert ports.redis.client.llen(DEFAULT.priority_list(9)) == 1
    assert [work_one(on).id for _ in range(4)] == [urgent, *waiting]


def test_a_job_whose_consumer_died_keeps_its_priority(ports, settings):
    on = default_huey(settings, ports, aging=3600.0)
    on.storage.batch = 1
    urgent = submit(ports, {"message": "urgent", "priority": 9})
    assert on.dequeue().id == urgent
    on.storage._held.clear()  # a dead process renews nothing
    waiting = backlog(ports)
    time.sleep(settings.job_lease + 0.2)
    promote_due(on=on)  # the reaper: the expired lease goes back
    assert ports.redis.client.llen(DEFAULT.priority_list(9)) == 1
    assert [work_one(on).id for _ in range(4)] == [urgent, *waiting]


def test_a_dead_job_replayed_from_the_dlq_keeps_its_priority(ports, settings):
    on = default_huey(settings, ports, aging=3600.0)
    urgent = submit(ports, {"message": "boom", "shouldFail": True, "priority": 9}, max_attempts=1)
    work_one(on)
    assert ports.dlq.get(urgent).priority == 9
    waiting = backlog(ports)
    dead_letters.replay_one(urgent, ports.dlq, ports.jobs, time.time(), 4)
    assert ports.jobs.get(urgent).priority == 9
    assert [work_one(on).id for _ in range(4)] == [urgent, *waiting]
