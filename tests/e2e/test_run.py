"""`forkline run`: the whole stack with its embedded Redis, as a user starts it."""

import contextlib
import os
import re
import signal
import time

import pytest
import redis

from harness.processes import Forkline, is_gone, wait_until
from tests.walkthrough import job_state, post, stats_of, walkthrough

FAST = {"WEB_CONCURRENCY": "2", "JOB_BACKOFF_BASE": "0.2", "JOB_LEASE": "2", "GRACEFUL_TIMEOUT": "10"}


@pytest.fixture
def stack(tmp_path):
    fl = Forkline("run", tmp_path, {**FAST})
    fl.env.pop("REDIS_URL", None)
    fl.start(timeout=30)
    yield fl
    assert fl.stop(signal.SIGTERM, timeout=40) == 0, fl.output()[-3000:]


def pid_of(fl, role):
    return wait_until(lambda: next((p for p, r in fl.roles().items() if r == role), None), 10, 0.1, role)


def test_jobs_complete_fail_into_the_dlq_and_replay(stack):
    walkthrough(stack)


def test_run_cloud_serves_the_same_walkthrough_on_the_emulated_cloud_shape(tmp_path):
    fl = Forkline("run", tmp_path, {**FAST}, args=("--cloud",))
    fl.env.pop("REDIS_URL", None)
    fl.start(timeout=60)
    try:
        assert stack_dependencies(fl) == {"sqs": "up", "dynamodb": "up"}
        walkthrough(fl)
        # The slow queue: its own SQS queue and emulated trigger, which receives nothing while it is paused.
        assert fl.request("POST", "/queues/slow/pause")[2] == {"queue": "slow", "paused": True}
        time.sleep(2.5)  # a receive already under way (1 s long poll, flag read every second) may still deliver
        held = post(fl, {"type": "sleep", "seconds": 0})
        quick = post(fl, {"message": "default still runs"})
        wait_until(lambda: job_state(fl, quick) == "completed", 15, 0.1, "the default queue's job")
        time.sleep(2.5)
        assert job_state(fl, held) == "queued"
        fl.request("POST", "/queues/slow/resume")
        wait_until(lambda: job_state(fl, held) == "completed", 20, 0.1, "the resumed queue's job")
        assert fl.request("GET", f"/jobs/{held}")[2]["attempts"] == 1
        assert set(fl.roles().values()) == {"cloud", "web", "consumer"}  # moto, HTTP workers, the Lambda trigger
        assert '"event": "cloud_ready"' in fl.output()
    finally:
        assert fl.stop(signal.SIGTERM, timeout=40) == 0, fl.output()[-3000:]


def stack_dependencies(fl):
    return fl.request("GET", "/health")[2]["dependencies"]


def test_killed_consumer_and_redis_are_restarted_and_nothing_is_lost(stack):
    consumer = pid_of(stack, "consumer")
    redis_pid = pid_of(stack, "redis")
    time.sleep(2.1)  # live past the boot window: this is a crash, not a boot failure
    slow = post(stack, {"type": "sleep", "seconds": 3})
    wait_until(lambda: job_state(stack, slow) == "active", 10, 0.05, "slow job running")
    os.kill(consumer, signal.SIGKILL)
    new_consumer = wait_until(lambda: (lambda p: p if p and p != consumer else None)(
        next((p for p, r in stack.roles().items() if r == "consumer"), None)), 5, 0.05, "new consumer")
    assert new_consumer != consumer
    # The killed consumer's job comes back after its lease and completes.
    wait_until(lambda: job_state(stack, slow) == "completed", 20, 0.1, "interrupted job completed")
    assert stack.request("GET", f"/jobs/{slow}")[2]["attempts"] == 2

    # Jobs waiting in Redis (the consumer paused, so none is taken) when Redis is SIGKILLed:
    # the new Redis reads them back from its AOF and each one completes.
    os.kill(new_consumer, signal.SIGSTOP)
    try:
        accepted = [post(stack, {"message": f"m{i}", "shouldFail": False}) for i in range(20)]
        stats = stack.request("GET", "/queue/stats")[2]
        assert (stats["waiting"], stats["active"]) == (20, 0), stats
        assert {job_state(stack, job_id) for job_id in accepted} == {"queued"}
        os.kill(redis_pid, signal.SIGKILL)
        wait_until(lambda: (lambda p: p and p != redis_pid)(pid_of(stack, "redis")), 10, 0.1, "a new Redis")
        wait_until(lambda: stack.request("GET", "/health", timeout=3)[0] == 200, 15, 0.2, "Redis back")
        assert stack.request("GET", "/queue/stats")[2]["waiting"] == 20  # back from the AOF, not yet taken
    finally:
        os.kill(new_consumer, signal.SIGCONT)
    for job_id in accepted:
        wait_until(lambda job_id=job_id: job_state(stack, job_id) == "completed", 20, 0.1, f"{job_id} completed")


def test_worker_sigterm_finishes_the_running_job(tmp_path, redis_url):
    api = Forkline("serve", tmp_path, {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "1"}).start()
    worker = Forkline("worker", tmp_path, {"REDIS_URL": redis_url, "GRACEFUL_TIMEOUT": "10"}).start(wait_http=False)
    try:
        job = api.request("POST", "/jobs", {"type": "sleep", "seconds": 2})[2]["jobId"]
        wait_until(lambda: api.request("GET", f"/jobs/{job}")[2]["state"] == "active", 15, 0.05, "job running")
        assert worker.stop(signal.SIGTERM, timeout=30) == 0
        record = api.request("GET", f"/jobs/{job}")[2]
        assert record["state"] == "completed" and record["attempts"] == 1
    finally:
        worker.stop(signal.SIGTERM, timeout=30)
        api.stop(signal.SIGTERM, timeout=30)


def test_api_keys_are_enforced_and_never_logged(tmp_path, redis_url):
    key = "sekrit-key-4b1d9e77"
    fl = Forkline("serve", tmp_path, {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "1", "API_KEYS": key,
                                      "LOG_LEVEL": "debug"}).start()
    try:
        body = {"message": "body-marker-71c3", "shouldFail": False}
        assert fl.request("POST", "/jobs", body)[0] == 401
        assert fl.request("POST", "/jobs", body, {"X-API-Key": "wrong-key-0000"})[0] == 403
        status, _, accepted = fl.request("POST", "/jobs", body, {"Authorization": f"Bearer {key}"})
        assert status == 202
        assert fl.request("GET", f"/jobs/{accepted['jobId']}", headers={"X-API-Key": key})[0] == 200
    finally:
        assert fl.stop(signal.SIGTERM, timeout=30) == 0
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log")) + fl.output()
    assert '"event": "worker_born"' in logs  # the logs were written
    for secret in (key, "wrong-key-0000", "body-marker-71c3"):
        assert secret not in logs


@pytest.mark.parametrize("args, backing", [((), "redis"), (("--cloud",), "cloud")])
def test_every_child_ends_when_the_supervisor_is_killed(tmp_path, args, backing):
    fl = Forkline("run", tmp_path, {**FAST, "WEB_CONCURRENCY": "1"}, args=args)
    fl.env.pop("REDIS_URL", None)
    fl.start(timeout=60)
    children = wait_until(lambda: fl.roles() if set(fl.roles().values()) == {backing, "web", "consumer"} else None,
                          10, 0.1, "the three roles")
    fl.stop(signal.SIGKILL, timeout=10)  # the fault, for real: nobody is left to stop the children

    try:  # a zombie until init reaps it counts as gone
        wait_until(lambda: all(is_gone(pid) for pid in children), 20, 0.2, f"{backing}, web and consumer gone")
    finally:
        for pid in children:  # never leave one behind, even when the check fails
            if not is_gone(pid):
                with contextlib.suppress(ProcessLookupError):  # it may end between the look and the kill
                    os.kill(pid, signal.SIGKILL)


def test_a_delayed_job_waits_for_its_time_even_across_a_redis_restart(stack):
    redis_pid = pid_of(stack, "redis")
    time.sleep(2.1)  # live past the boot window: this is a crash, not a boot failure
    status, _, accepted = stack.request("POST", "/jobs", {"message": "later", "delay": 6})
    assert (status, accepted["status"]) == (202, "scheduled")
    later = accepted["jobId"]
    cancelled = stack.request("POST", "/jobs", {"message": "never", "delay": 3})[2]["jobId"]
    assert stack.request("DELETE", f"/jobs/{cancelled}")[2]["state"] == "cancelled"
    record = stack.request("GET", f"/jobs/{later}")[2]
    assert record["state"] == "scheduled" and stats_of(stack)["delayed"] == 2  # both messages wait in the schedule
    os.kill(redis_pid, signal.SIGKILL)
    wait_until(lambda: (lambda p: p and p != redis_pid)(pid_of(stack, "redis")), 10, 0.1, "a new Redis")
    wait_until(lambda: stack.request("GET", "/health", timeout=3)[0] == 200, 15, 0.2, "Redis back")
    assert time.time() < record["runAt"] and job_state(stack, later) == "scheduled"  # back from the AOF, waiting
    wait_until(lambda: job_state(stack, later) == "completed", record["runAt"] - time.time() + 10, 0.1, "its run")
    done = stack.request("GET", f"/jobs/{later}")[2]
    assert done["attempts"] == 1 and record["runAt"] <= done["finishedAt"] < record["runAt"] + 5  # on time
    assert job_state(stack, cancelled) == "cancelled" and stats_of(stack)["delayed"] == 0  # dropped, never run


def niceness(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[16])


def test_by_default_one_consumer_per_core_runs_niced_below_the_web_workers(tmp_path, redis_url):
    fl = Forkline("run", tmp_path, {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "2"})
    for name in ("CONSUMER_PROCESSES", "CONSUMER_NICE"):
        fl.env.pop(name)  # the defaults
    fl.start(timeout=30)
    try:
        consumers = wait_until(lambda: (lambda c: c if len(c) == os.cpu_count() else None)(
            [p for p, r in fl.roles().items() if r == "consumer"]), 15, 0.1, "a consumer per core")
        webs = [p for p, r in fl.roles().items() if r == "web"]
        assert len(webs) == 2
        assert [niceness(p) for p in consumers] == [10] * len(consumers)
        assert [niceness(p) for p in webs + [fl.proc.pid]] == [0, 0, 0]
        job = post(fl, {"type": "noop"})
        wait_until(lambda: job_state(fl, job) == "completed", 10, 0.05, "a job runs on the niced consumers")
    finally:
        assert fl.stop(signal.SIGTERM, timeout=40) == 0, fl.output()[-3000:]


@pytest.mark.parametrize("policy", [None, "always"])
def test_the_embedded_redis_fsyncs_as_redis_appendfsync_says(tmp_path, policy):
    env = {**FAST, **({"REDIS_APPENDFSYNC": policy} if policy else {})}
    fl = Forkline("run", tmp_path, env)
    fl.env.pop("REDIS_URL", None)
    fl.start(timeout=30)
    try:
        url = wait_until(lambda: re.search(r'"event": "redis_ready", "url": "([^"]+)"', fl.output()), 10, 0.1,
                         "the embedded Redis's address").group(1)
        client = redis.Redis.from_url(url, socket_timeout=5)
        assert client.config_get("appendfsync") == {"appendfsync": policy or "everysec"}  # the template's default
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
    finally:
        assert fl.stop(signal.SIGTERM, timeout=40) == 0, fl.output()[-3000:]
