import pytest

from functions import dead_letters, routes
from functions.errors import Conflict, InvalidInput, JobFailed, KeyReused, NotFound
from functions.jobs import JOB_TYPES, backoff_delay, run_job
from functions.models import DeadJob, JobState
from tests.fakes import FixedProbe, MemoryDLQ, MemoryQueue

TEMPLATE_BODY = {"message": "Hello from queue!", "shouldFail": False}


def ids(*values):
    it = iter(values)
    return lambda: next(it)


def dead(job_id, failed_at=1.0):
    return DeadJob(jobId=job_id, type="message", payload={"message": "x", "shouldFail": True},
                   error="JobFailed: x", attempts=4, failedAt=failed_at)


def test_welcome_names_the_serving_process():
    assert routes.welcome(4242).workerPID == 4242


def test_health_ok_and_degraded():
    up = routes.health(FixedProbe(redis=True), started_at=100.0, now=112.5, pid=7)
    assert (up.status, up.uptime, up.dependencies) == ("ok", 12.5, {"redis": "up"})
    down = routes.health(FixedProbe(redis=False), started_at=100.0, now=101.0, pid=7)
    assert (down.status, down.dependencies) == ("degraded", {"redis": "down"})


def test_submit_job_accepts_the_template_body_as_is():
    queue = MemoryQueue()
    accepted, created = routes.submit_job(dict(TEMPLATE_BODY), queue, ids("j1"), now=5.0, max_attempts=4)
    assert accepted.jobId == "default.j1" and accepted.status == "queued" and created
    record = queue.get("default.j1")
    assert record.type == "message" and record.payload == TEMPLATE_BODY
    assert record.state == JobState.queued and record.maxAttempts == 4 and record.createdAt == 5.0
    assert queue.queue == ["default.j1"] and record.queue == "default"


def test_a_repeated_idempotency_key_returns_the_first_job_and_writes_nothing():
    queue = MemoryQueue()
    first, created = routes.submit_job(dict(TEMPLATE_BODY), queue, ids("j1"), 0.0, 4, idempotency_key="k-1")
    again, created_again = routes.submit_job(dict(TEMPLATE_BODY), queue, ids("j2"), 1.0, 4, idempotency_key="k-1")
    assert (first.jobId, created) == ("default.j1", True)
    assert (again.jobId, created_again) == ("default.j1", False)
    assert queue.queue == ["default.j1"] and queue.get("default.j2") is None


def test_an_idempotency_key_reused_with_another_body_is_refused():
    queue = MemoryQueue()
    routes.submit_job(dict(TEMPLATE_BODY), queue, ids("j1"), 0.0, 4, idempotency_key="k-1")
    with pytest.raises(KeyReused) as err:
        routes.submit_job({"message": "other"}, queue, ids("j2"), 1.0, 4, idempotency_key="k-1")
    assert err.value.status == 422 and err.value.details == {"jobId": "default.j1"}
    assert queue.queue == ["default.j1"]


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9"])
def test_malformed_idempotency_keys_are_refused(key):
    queue = MemoryQueue()
    with pytest.raises(InvalidInput):
        routes.submit_job(dict(TEMPLATE_BODY), queue, ids("j1"), 0.0, 4, idempotency_key=key)
    assert queue.queue == []


@pytest.mark.parametrize("body, fragment", [
    ([1, 2], "JSON object"),
    ("text", "JSON object"),
    ({}, "Invalid job payload"),
    ({"message": 5}, "Invalid job payload"),
    ({"message": "x", "shouldFail": "maybe"}, "Invalid job payload"),
    ({"message": "x", "extra": 1}, "Invalid job payload"),
    ({"type": "nope", "message": "x"}, "Unknown job type"),
    ({"type": 3}, "Invalid job request"),
])
def test_submit_job_rejects_bad_bodies_and_writes_nothing(body, fragment):
    queue = MemoryQueue()
    with pytest.raises(InvalidInput) as err:
        routes.submit_job(body, queue, ids("j1"), now=0.0, max_attempts=4)
    assert fragment in err.value.message
    assert queue.records == {} and queue.queue == []


def test_type_selects_a_registered_job():
    queue = MemoryQueue()
    routes.submit_job({"type": "sleep", "seconds": 0.5}, queue, ids("s1"), now=0.0, max_attempts=1)
    assert queue.get("slow.s1").type == "sleep" and queue.get("slow.s1").payload == {"seconds": 0.5}


def test_get_job_and_unknown_id():
    queue = MemoryQueue()
    routes.submit_job(dict(TEMPLATE_BODY), queue, ids("j1"), now=0.0, max_attempts=4)
    assert routes.get_job("default.j1", queue).id == "default.j1"
    with pytest.raises(NotFound):
        routes.get_job("missing", queue)


def test_queue_stats_sums_the_queues_and_adds_the_dlq_count():
    queue = MemoryQueue()
    routes.submit_job(dict(TEMPLATE_BODY), queue, ids("j1"), now=0.0, max_attempts=4)
    routes.submit_job({"type": "sleep", "seconds": 1}, queue, ids("s1"), now=0.0, max_attempts=4)
    routes.set_paused("slow", True, queue)
    stats = routes.queue_stats(queue, MemoryDLQ([dead("a"), dead("slow.b")]))
    assert stats.waiting == 2 and stats.dlq == 2
    default, slow = stats.queues["default"], stats.queues["slow"]
    assert (default.waiting, default.dlq, default.paused) == (1, 1, False)
    assert (slow.waiting, slow.dlq, slow.paused) == (1, 1, True)
    assert routes.set_paused("slow", False, queue).paused is False and not routes.queue_stats(
        queue, MemoryDLQ()).queues["slow"].paused
    with pytest.raises(NotFound) as err:
        routes.set_paused("nope", True, queue)
    assert err.value.details == {"declared": ["default", "slow"]}


def test_a_job_type_declares_its_queue_retries_and_timeout(monkeypatch):
    from functions import jobs

    monkeypatch.setitem(jobs.JOB_TYPES, "email", jobs.JobType("email", jobs.NoopPayload, jobs.run_noop,
                                                              queue="email", max_retries=1, timeout=7.0))
    queue = MemoryQueue()
    accepted, _ = routes.submit_job({"type": "email"}, queue, ids("e1"), now=0.0, max_attempts=4)
    record = queue.get(accepted.jobId)
    assert (record.id, record.queue, record.maxAttempts) == ("email.e1", "email", 2)
    assert jobs.job_timeout("email", 300.0) == (7.0, "the email type's timeout")
    assert jobs.job_timeout("message", 300.0) == (300.0, "JOB_TIMEOUT")
    assert jobs.declared_queues() == ["default", "email", "slow"]
    assert jobs.queue_of("email.e1") == "email" and jobs.queue_of("0f3a9c") is None  # an id from before queues
    with pytest.raises(ValueError, match="queue name"):
        jobs.JobType("bad", jobs.NoopPayload, jobs.run_noop, queue="Has.Dot")


def test_list_dlq_pages_in_failure_order_and_validates_params():
    dlq = MemoryDLQ([dead("c", 3.0), dead("a", 1.0), dead("b", 2.0)])
    page = routes.list_dlq(dlq, offset="1", limit="1")
    assert [e.jobId for e in page.items] == ["b"] and page.total == 3
    assert [e.jobId for e in routes.list_dlq(dlq, None, None).items] == ["a", "b", "c"]
    for offset, limit in (("x", None), ("-1", None), (None, "0"), (None, "101")):
        with pytest.raises(InvalidInput):
            routes.list_dlq(dlq, offset, limit)


def test_replay_moves_the_job_back_with_attempts_reset():
    queue, dlq = MemoryQueue(), MemoryDLQ([dead("a")])
    replayed = dead_letters.replay_one("a", dlq, queue, now=9.0, max_attempts=4)
    assert replayed.jobId == "a"
    assert dlq.count() == 0
    record = queue.get("a")
    assert record.attempts == 0 and record.state == JobState.queued and record.payload["shouldFail"] is True
    with pytest.raises(NotFound):
        dead_letters.replay_one("a", dlq, queue, now=9.0, max_attempts=4)


def test_replay_that_cannot_enqueue_keeps_the_dlq_entry():
    queue, dlq = MemoryQueue(), MemoryDLQ([dead("a")])
    queue.fail_next = True
    with pytest.raises(RuntimeError):
        dead_letters.replay_one("a", dlq, queue, now=9.0, max_attempts=4)
    assert dlq.get("a") is not None


def test_backoff_is_exponential():
    assert [backoff_delay(n, 2.0) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert [backoff_delay(n, 2.0, cap=5.0) for n in (1, 2, 3, 30)] == [2.0, 4.0, 5.0, 5.0]
    # Jitter spreads a delay over +/- the fraction, and never past the cap.
    assert (backoff_delay(3, 2.0, 300, 0.25, rand=0.0), backoff_delay(3, 2.0, 300, 0.25, rand=1.0)) == (6.0, 10.0)
    assert backoff_delay(3, 2.0, 300, 0.25, rand=0.5) == 8.0 and backoff_delay(3, 2.0, 9.0, 0.25, rand=1.0) == 9.0


def test_job_functions():
    assert run_job("message", {"message": "hi", "shouldFail": False}) == {"processed": "hi"}
    with pytest.raises(JobFailed):
        run_job("message", {"message": "hi", "shouldFail": True})
    assert run_job("noop", {}) is None
    assert set(JOB_TYPES) >= {"message", "noop", "sleep"}


def test_cancel_a_queued_job_then_it_is_cancelled_and_cannot_be_cancelled_again():
    queue = MemoryQueue()
    accepted, _ = routes.submit_job({"message": "x"}, queue, lambda: "j1", 1.0, 4)
    record = routes.cancel_job(accepted.jobId, queue, 2.0)
    assert (record.state, record.finishedAt) == (JobState.cancelled, 2.0)
    with pytest.raises(Conflict) as err:
        routes.cancel_job(accepted.jobId, queue, 3.0)
    assert err.value.status == 409 and err.value.details == {"state": "cancelled"}
    with pytest.raises(NotFound):
        routes.cancel_job("j2", queue, 3.0)


def test_a_delayed_job_is_scheduled_until_its_run_at_and_bad_timing_is_a_422_naming_the_field():
    queue = MemoryQueue()
    accepted, _ = routes.submit_job({"message": "later", "delay": 30}, queue, ids("d1"), now=1000.0, max_attempts=4)
    record = queue.get(accepted.jobId)
    assert (accepted.status, record.state, record.runAt) == ("scheduled", JobState.scheduled, 1030.0)
    assert record.payload == {"message": "later", "shouldFail": False}  # delay is not part of the payload
    at, _ = routes.submit_job({"message": "at", "runAt": 5000}, queue, ids("d2"), 1000.0, 4)
    assert queue.get(at.jobId).runAt == 5000.0
    for body in ({"message": "now", "delay": 0}, {"message": "a moment ago", "runAt": 970}):
        accepted, _ = routes.submit_job(body, queue, ids(f"n{len(queue.queue)}"), 1000.0, 4)
        assert (accepted.status, queue.get(accepted.jobId).runAt) == ("queued", None)  # runs at once
    before = list(queue.queue)
    for body, field in (({"delay": -1}, "delay"), ({"delay": "soon"}, "delay"), ({"delay": 30 * 86400 + 1}, "delay"),
                        ({"runAt": 1000 - 61}, "runAt"), ({"runAt": 1000 + 30 * 86400 + 1}, "runAt"),
                        ({"delay": 5, "runAt": 1005}, "runAt")):
        with pytest.raises(InvalidInput) as err:
            routes.submit_job({"message": "x", **body}, queue, ids("bad"), 1000.0, 4)
        assert err.value.details[0]["field"] == field, (body, err.value.details)
    with pytest.raises(InvalidInput) as err:  # the SQS queue holds a message back at most 900 s
        routes.submit_job({"message": "x", "delay": 901}, queue, ids("bad"), 1000.0, 4, max_delay=900)
    assert "900 s ahead" in err.value.message and "DelaySeconds" in err.value.message
    assert queue.queue == before  # nothing written
    assert routes.cancel_job(at.jobId, queue, 1001.0).state == JobState.cancelled  # scheduled: not started


def test_periodic_schedules_tick_and_each_tick_makes_one_job_however_many_submit_it():
    from functions.periodic import parse_periodic, submit_due

    tick, digest = parse_periodic('tick=noop@2; digest=message@0 7 * * 1@{"message": "weekly"}')
    assert (tick.tick(101.9), tick.tick(102.0)) == (100, 102)
    monday_7am = 1764572400  # 2025-12-01 07:00 UTC, a Monday
    assert digest.tick(monday_7am + 59) == monday_7am and digest.tick(monday_7am + 60) is None
    assert digest.tick(monday_7am + 86400) is None  # Tuesday
    queue = MemoryQueue()
    made = [submit_due(tick, queue, 101.0 + n * 0.5, 4) for n in range(8) for _ in (1, 2)]  # two consumers
    assert [m for m in made if m[1]] == [(100, True), (102, True), (104, True)]
    assert queue.queue == ["default.periodic:tick:100", "default.periodic:tick:102", "default.periodic:tick:104"]
    assert submit_due(digest, queue, monday_7am + 3600, 4) is None
    for bad in ("x=nope@2", "x=noop@0.5", "x=noop@* * *", "x=message@2", "x=noop@61 * * * *", "noop@2"):
        with pytest.raises(ValueError):
            parse_periodic(bad)


def test_priority_is_0_to_9_default_5_and_refused_where_the_queue_has_none():
    queue = MemoryQueue()
    high, _ = routes.submit_job({"message": "x", "priority": 9}, queue, ids("p1"), 0.0, 4)
    plain, _ = routes.submit_job({"message": "x"}, queue, ids("p2"), 0.0, 4)
    assert (queue.get(high.jobId).priority, queue.get(plain.jobId).priority) == (9, 5)
    assert queue.get(high.jobId).payload == {"message": "x", "shouldFail": False}
    for value in (10, -1, "high"):
        with pytest.raises(InvalidInput) as err:
            routes.submit_job({"message": "x", "priority": value}, queue, ids("bad"), 0.0, 4)
        assert err.value.details[0]["field"] == "priority"
    with pytest.raises(InvalidInput) as err:  # SQS has no priorities
        routes.submit_job({"message": "x", "priority": 7}, queue, ids("bad"), 0.0, 4, priorities=False)
    assert err.value.details[0]["field"] == "priority" and "SQS" in err.value.message
    accepted, _ = routes.submit_job({"message": "x", "priority": 5}, queue, ids("p3"), 0.0, 4, priorities=False)
    assert queue.get(accepted.jobId).priority == 5
