"""Priorities within a queue, on a real Redis: higher first, first in first out within a priority, and
aging (one level per PRIORITY_AGING seconds waited) so a steady stream of high priorities cannot
starve a low one."""

import time

from adapters.redis import keys
from adapters.wiring import configure_consumer
from tests.adapters.huey.steps import submit, work_one

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
