"""GET /jobs and GET /queue/history on a real Redis: the per-state indexes match the records through
every state move (submit, claim, completion, retry, death, cancel, replay, a lease that lapses, the
records' own expiry), pages follow one another without gaps, and the history counts what ran."""

import time

import pytest

from adapters.redis import keys, scripts
from adapters.redis.job_lists import index_key
from adapters.wiring import configure_consumer
from functions import dead_letters, listing
from functions.errors import InvalidInput
from functions.listing import LISTED_STATES
from tests.adapters.huey.steps import huey, promote_due, submit, work_one

DEFAULT = keys.queue_keys("default")


@pytest.fixture(autouse=True)
def consumer(settings):
    return configure_consumer(settings)


def listed(ports, **params) -> list[str]:
    """Every job id GET /jobs lists for `params`, page after page (10 a page)."""
    ids, cursor = [], None
    for _ in range(100):
        page = listing.list_jobs({**params, "limit": 10, "cursor": cursor}, ports.jobs)
        ids += [record.id for record in page.items]
        cursor = page.cursor
        if cursor is None:
            return ids
    raise AssertionError("no last page")


def records_by_state(ports) -> dict[str, set[str]]:
    client, found = ports.redis.client, {state: set() for state in LISTED_STATES}
    for key in client.scan_iter(match=DEFAULT.job_prefix + "*", count=1000):
        state = client.hget(key, "state")
        if state:
            found[state.decode()].add(key.decode().removeprefix(DEFAULT.job_prefix))
    return found


def assert_lists_match_records(ports) -> None:
    truth = records_by_state(ports)
    for state in LISTED_STATES:
        got = listed(ports, state=state)
        assert len(got) == len(set(got)) and set(got) == truth[state], state
    assert sorted(listed(ports)) == sorted(job_id for ids in truth.values() for job_id in ids)


def test_the_lists_match_the_records_through_every_state_move(ports, settings):
    ok = submit(ports, {"message": "fine"})
    bad = submit(ports, {"message": "boom", "shouldFail": True})
    later = submit(ports, {"message": "later", "delay": 60})
    dropped = submit(ports, {"message": "never", "delay": 60})
    assert_lists_match_records(ports)
    assert listed(ports, state="scheduled") == [dropped, later]  # newest first
    ports.jobs.cancel(dropped, time.time())
    assert_lists_match_records(ports)
    work_one()  # ok completes
    assert ports.jobs.get(ok).state == "completed" and listed(ports, state="completed") == [ok]
    for _ in range(3):  # bad: three retries, then dead
        work_one()
        assert_lists_match_records(ports)
        time.sleep(settings.job_backoff_base * 4 + 0.1)
        promote_due()
    work_one()
    assert listed(ports, state="dead") == [bad]
    dead_letters.replay_one(bad, ports.dlq, ports.jobs, time.time(), 4)  # dead -> queued
    assert listed(ports, state="queued") == [bad] and listed(ports, state="dead") == []
    huey.dequeue()  # claimed by a consumer that then dies: its lease lapses, the record stays active
    huey.storage._held.clear()
    assert listed(ports, state="active") == [bad]
    time.sleep(settings.job_lease + 0.2)
    promote_due()  # reaped: the message is back on the queue; the record says active until claimed again
    assert_lists_match_records(ports)
    work_one()  # its attempt after the replay fails again: retrying
    assert ports.jobs.get(bad).state == "retrying" and listed(ports, state="retrying") == [bad]
    ports.redis.client.delete(DEFAULT.job(ok))  # the record expires (its TTL, here at once)
    assert ok not in listed(ports, state="completed")
    assert ports.redis.client.zscore(index_key(ports.jobs.stores["default"], "completed"), ok) is None  # repaired
    assert_lists_match_records(ports)
    assert listed(ports, state="queued", type="message") == [] and listed(ports, type="noop") == []
    assert later in listed(ports, queue="default") and listed(ports, queue="slow") == []


def test_a_leased_message_without_a_record_is_not_listed(ports):
    """A message from a producer that wrote no record (or whose record expired) is claimed all the same;
    the active list, read from the lease set, skips it and leaves the lease alone."""
    ports.redis.client.zadd(DEFAULT.leases, {"default.no-record 2\nmessage": time.time() + 30})
    submit(ports, {"message": "x"})
    huey.dequeue()
    assert len(listed(ports, state="active")) == 1 and ports.redis.client.zcard(DEFAULT.leases) == 2


def test_finished_jobs_leave_their_index_with_their_retention(ports):
    store = ports.jobs.stores["default"]
    stale = time.time() - 86400 - 60  # finished before JOB_RETENTION (24 h) ago
    ports.redis.client.zadd(index_key(store, "completed"), {"default.long-gone": stale})
    promote_due()  # the scheduler's tick trims the finished indexes
    assert ports.redis.client.zscore(index_key(store, "completed"), "default.long-gone") is None


def test_pages_follow_one_another_and_bad_parameters_are_422(ports):
    ids = [submit(ports, {"message": str(n)}) for n in range(25)]
    assert listed(ports, state="queued") == ids[::-1]
    first = listing.list_jobs({"state": "queued", "limit": "25"}, ports.jobs)
    assert first.cursor is None and [r.id for r in first.items] == ids[::-1]
    for params, field in (({"state": "waiting"}, "state"), ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"),
                          ({"cursor": "not-a-cursor"}, "cursor"), ({"queue": "nope"}, "queue")):
        with pytest.raises(InvalidInput) as refused:
            listing.list_jobs(params, ports.jobs)
        assert refused.value.details[0]["field"] == field


def test_the_history_counts_what_ran(ports, settings):
    for n in range(5):
        submit(ports, {"message": str(n)})
    bad = submit(ports, {"message": "boom", "shouldFail": True})
    for _ in range(5):
        work_one()
    for _ in range(3):
        work_one()
        time.sleep(settings.job_backoff_base * 4 + 0.1)
        promote_due()
    work_one()
    assert ports.jobs.get(bad).state == "dead"
    now = time.time()
    for step in ("minute", "hour"):
        history = listing.job_history({"step": step}, ports.jobs, now)
        totals = {e: sum(getattr(b, e) for b in history.buckets)
                  for e in ("accepted", "completed", "failed", "retried")}
        assert totals == {"accepted": 6, "completed": 5, "failed": 1, "retried": 3}, step
        assert history.buckets[-1].at <= now < history.until
    assert len(listing.job_history({}, ports.jobs, now).buckets) in (60, 61)  # the last hour, per minute
    slow = listing.job_history({"queue": "slow"}, ports.jobs, now)
    assert sum(b.accepted + b.completed for b in slow.buckets) == 0
    with pytest.raises(InvalidInput):
        listing.job_history({"step": "minute", "since": str(now - 2 * 86400)}, ports.jobs, now)


def test_a_claim_that_moves_many_jobs_at_once_keeps_the_lists_and_the_history(ports):
    """One claim round trip takes ten messages, the next records their ten outcomes: each script's index
    and history writes are gathered and made once per key (lua/index.lua), and still match the records."""
    ids = [submit(ports, {"message": str(n)}) for n in range(10)]
    huey.storage.batch = 10
    try:
        tasks = [huey.dequeue() for _ in range(10)]  # one claim script: ten messages
        assert {t.id for t in tasks} == set(ids) and listed(ports, state="queued") == []
        assert sorted(listed(ports, state="active")) == sorted(ids)
        for task in tasks:
            huey.execute(task)  # the outcomes wait for the next claim
        assert listed(ports, state="completed") == []
        huey.storage.flush()  # one claim script: ten completions
    finally:
        huey.storage.batch = 1
    assert_lists_match_records(ports)
    assert sorted(listed(ports, state="completed")) == sorted(ids)
    totals = {e: sum(getattr(b, e) for b in listing.job_history({}, ports.jobs, time.time()).buckets)
              for e in ("accepted", "completed")}
    assert totals == {"accepted": 10, "completed": 10}


def test_a_batch_larger_than_one_lua_unpack_is_written_whole(ports):
    """index_flush() writes in chunks: Lua's unpack() refuses ~8,000 values, a batch may hold more."""
    driver = b"""
index_batch()
for i = 1, tonumber(ARGV[1]) do
  index_move('{t}:job:' .. i, 'queued', 'completed', i)
  history_add('{t}:job:' .. i, 'completed', 120)
end
index_flush()
"""
    client = ports.redis.client
    client.zadd("{t}:jobs:queued", {str(n): n for n in range(1, 10_001)})
    source = (scripts._LUA / "index.lua").read_bytes() + driver
    client.eval(source, 0, 10_000)
    assert (client.zcard("{t}:jobs:completed"), client.zcard("{t}:jobs:queued")) == (10_000, 0)
    assert client.hget("{t}:history:0", "2:completed") == b"10000"
