"""Named queues on a real Redis: each queue's keys, retries, DLQ, leases and pause are its own.

An `email` queue is declared for these tests (a job type registered as a user would, next to the
others in the registry), so the checks run on a queue other than the built-in ones.
"""

import time

import pytest
from redis.crc import key_slot

from adapters.redis import keys
from adapters.redis.framing import MESSAGE_FORMAT, frame_message, unframe_message
from adapters.wiring import build_ports, configure_consumer
from functions import jobs, routes
from tests.adapters.huey.steps import huey, promote_due, submit, work_one

EMAIL = keys.queue_keys("email")


@pytest.fixture
def email(monkeypatch, settings):
    """Ports and the `email` queue's Huey, with `email` declared (max_retries 1: two attempts)."""
    monkeypatch.setitem(jobs.JOB_TYPES, "email", jobs.JobType("email", jobs.MessagePayload, jobs.run_message,
                                                              queue="email", max_retries=1))
    ports = build_ports(settings)
    hueys = {h.keys: h for h in configure_consumer(settings, ports)}
    assert set(hueys) == {keys.queue_keys("default"), EMAIL, keys.queue_keys("slow"), keys.LEGACY}
    return ports, hueys[EMAIL]


def send(ports, message, fail=False, key=None):
    accepted, _ = routes.submit_job({"type": "email", "message": message, "shouldFail": fail}, ports.jobs,
                                    lambda: f"e-{time.monotonic_ns()}", time.time(), 4, idempotency_key=key)
    return accepted.jobId


def test_a_queue_retries_with_its_types_own_limit_and_dead_letters_into_its_own_dlq(email):
    ports, on = email
    job_id = send(ports, "boom", fail=True)
    assert job_id.startswith("email.") and ports.jobs.get(job_id).maxAttempts == 2  # max_retries=1 of its type
    work_one(on)
    record = ports.jobs.get(job_id)
    assert record.state == "retrying" and ports.jobs.counts()["email"]["delayed"] == 1
    time.sleep(max(0.0, record.nextAttemptAt - time.time()) + 0.05)
    promote_due(on=on)
    work_one(on)
    record = ports.jobs.get(job_id)
    assert (record.state, record.attempts, record.queue) == ("dead", 2, "email")
    assert ports.dlq.get(job_id).queue == "email" and ports.dlq.count_by_queue()["email"] == 1
    assert ports.redis.client.hlen(EMAIL.dlq_entries) == 1
    assert ports.jobs.counts()["email"]["failed"] == 1 and ports.jobs.counts()["default"]["failed"] == 0


def test_a_claimed_job_of_a_queue_comes_back_to_that_queue_after_its_lease(email, settings):
    ports, on = email
    job_id = send(ports, "hi")
    on.dequeue()  # claimed, then the "consumer" dies: no execute, no ack
    on.storage._held.clear()
    time.sleep(settings.job_lease + 0.2)
    promote_due(on=on)
    assert ports.jobs.counts()["email"]["waiting"] == 1 and ports.jobs.counts()["default"]["waiting"] == 0
    work_one(on)
    assert (ports.jobs.get(job_id).state, ports.jobs.get(job_id).attempts) == ("completed", 2)
    assert ports.jobs.counts()["email"]["completed"] == 1


def test_idempotency_keys_are_per_queue(email):
    ports, _ = email
    first = send(ports, "once", key="order-7")
    assert send(ports, "once", key="order-7") == first  # a repeat on the same queue: the first job
    on_default = submit_keyed(ports, "order-7")
    assert on_default != first and on_default.startswith("default.")  # the same key on another queue: its own job
    assert ports.redis.client.exists(EMAIL.idempotency("order-7"), keys.queue_keys("default").idempotency("order-7"))


def submit_keyed(ports, key):
    accepted, _ = routes.submit_job({"message": "once"}, ports.jobs, lambda: "d-1", time.time(), 4, idempotency_key=key)
    return accepted.jobId


def test_a_paused_queue_claims_nothing_while_the_others_run_and_resumes(email):
    ports, on = email
    waiting = send(ports, "held")
    routes.set_paused("email", True, ports.jobs)
    assert on.dequeue() is None and on.storage.paused  # the message stays, the worker backs off
    assert ports.jobs.get(waiting).state == "queued" and ports.jobs.counts()["email"] == {
        "waiting": 1, "active": 0, "delayed": 0, "completed": 0, "failed": 0, "dlqPending": 0, "paused": 1}
    also = send(ports, "accepted while paused")
    other = submit(ports, {"message": "default still runs"})
    assert work_one(huey).id == other  # another queue is not paused
    routes.set_paused("email", False, ports.jobs)
    assert {work_one(on).id, work_one(on).id} == {waiting, also}
    assert not on.storage.paused and ports.jobs.counts()["email"]["completed"] == 2
    routes.set_paused("default", True, ports.jobs)  # the old keys' drain is part of `default`: paused with it
    assert ports.redis.client.exists(keys.LEGACY.paused, keys.queue_keys("default").paused) == 2
    routes.set_paused("default", False, ports.jobs)
    assert ports.redis.client.exists(keys.LEGACY.paused, keys.queue_keys("default").paused) == 0


def test_a_message_in_a_newer_format_is_dead_lettered_not_misread(email):
    ports, on = email
    job_id = send(ports, "from the future")
    client = ports.redis.client
    current = client.rpop(EMAIL.list)
    client.rpush(EMAIL.list, frame_message(job_id, unframe_message(current), message_format=MESSAGE_FORMAT + 1))
    assert on.dequeue() is None
    record = ports.jobs.get(job_id)
    assert record.state == "dead" and f"message format {MESSAGE_FORMAT + 1} is newer" in record.lastError
    entry = ports.dlq.get(job_id)
    assert entry.error == record.lastError and client.zcard(EMAIL.leases) == 0
    assert (entry.type, entry.payload) == ("email", {"message": "from the future", "shouldFail": False})  # replayable


def test_every_key_of_a_queue_carries_its_hash_tag(email):
    """So that each script touches one Redis Cluster slot: records, list, leases, schedule, counters,
    idempotency keys, DLQ, pending DLQ entries and the pause flag of each queue."""
    ports, on = email
    send(ports, "ok", key="k-1")
    send(ports, "boom", fail=True)
    submit(ports, {"message": "boom", "shouldFail": True}, max_attempts=1)
    submit(ports, {"type": "sleep", "seconds": 0})
    on.dequeue()  # a lease
    work_one(on)  # a retry in the schedule
    work_one(huey)  # a dead default job in its DLQ
    send(ports, "waits")
    routes.set_paused("slow", True, ports.jobs)
    found = [k.decode() for k in ports.redis.client.scan_iter(count=1000)]
    by_queue = {}
    for key in found:
        queue = key[len("{forkline:"):key.index("}")]
        assert key.startswith("{forkline:") and key_slot(key.encode()) == key_slot(f"{{forkline:{queue}}}".encode())
        by_queue.setdefault(queue, set()).add(key.split("}:", 1)[1].split(":", 1)[0])
    assert by_queue["email"] >= {"job", "queue", "leases", "schedule", "idem"}
    assert by_queue["default"] >= {"job", "stats", "dlq"} and "paused" in by_queue["slow"]


def test_a_types_own_timeout_stops_its_attempt(monkeypatch, settings):
    """`timeout` on the job type, not JOB_TIMEOUT (300 s here), limits each attempt in the consumer."""
    import threading

    from local.runtime.consumer import watch_jobs

    monkeypatch.setitem(jobs.JOB_TYPES, "report", jobs.JobType("report", jobs.SleepPayload, jobs.run_sleep,
                                                               queue="email", timeout=0.3))
    ports = build_ports(settings)
    on = {h.keys: h for h in configure_consumer(settings, ports)}[EMAIL]
    stop = threading.Event()
    watcher = threading.Thread(target=watch_jobs, args=([on], stop, 0.05), daemon=True)
    watcher.start()
    try:
        accepted, _ = routes.submit_job({"type": "report", "seconds": 30}, ports.jobs, lambda: "r-1", time.time(), 4)
        started = time.monotonic()
        work_one(on)
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        watcher.join(5)
    record = ports.jobs.get(accepted.jobId)
    assert record.state == "retrying"
    assert record.lastError == "JobTimeout: the job ran longer than the report type's timeout (0.3s)"
