"""`forkline check` against real stacks: `forkline run` plain, with --chaos (a consumer and a web worker
SIGKILLed mid-burst) and --chaos=redis (the embedded Redis too), `forkline run --cloud`; a job made to go
missing on purpose (its message dropped from Redis) makes it exit 1; --cleanup and the probes' own
retention leave nothing behind; --chaos without a local stack refuses with one line."""

import json
import re
import signal
import subprocess
import threading

import pytest
import redis

from adapters.redis import keys
from functions.jobs import CHECK_RETENTION
from harness.processes import FORKLINE, ROOT, Forkline, wait_until
from tests.figures import report

FAST = {"WEB_CONCURRENCY": "2", "JOB_LEASE": "2", "GRACEFUL_TIMEOUT": "10"}


def check(stack: Forkline, *args: str, timeout: float = 120) -> tuple[int, dict | str]:
    result = subprocess.run([*FORKLINE, "check", *args], capture_output=True, text=True, timeout=timeout,
                            env={**stack.env, "FORKLINE_URL": f"http://127.0.0.1:{stack.port}"}, cwd=ROOT)
    try:
        return result.returncode, json.loads(result.stdout)
    except ValueError:
        return result.returncode, result.stdout + result.stderr


def redis_of(stack: Forkline) -> redis.Redis:
    url = wait_until(lambda: re.search(r'"event": "redis_ready", "url": "([^"]+)"', stack.output()), 10, 0.1,
                     "the embedded Redis's address").group(1)
    return redis.Redis.from_url(url, socket_timeout=5)


@pytest.fixture
def stack(tmp_path):
    fl = Forkline("run", tmp_path, dict(FAST))
    fl.env.pop("REDIS_URL", None)
    fl.start(timeout=30)
    yield fl
    assert fl.stop(signal.SIGTERM, timeout=40) == 0, fl.output()[-3000:]


def test_a_plain_check_passes_and_its_probes_leave_nothing_behind(stack):
    status, found = check(stack, "--jobs", "200", "--json")
    assert status == 0, found
    assert isinstance(found, dict)
    assert (found["accepted"], found["completed"], found["dead"], found["missing"]) == (200, 200, 0, 0)
    assert found["latencyMs"]["p99"] is not None and found["jobsPerSecond"] > 0
    client = redis_of(stack)
    probe_keys = list(client.scan_iter(match=keys.queue_keys("default").job_prefix + "*", count=1000))
    assert len(probe_keys) == 200 and all(0 < client.ttl(k) <= CHECK_RETENTION for k in probe_keys)
    idempotency = list(client.scan_iter(match=keys.queue_keys("default").idempotency_prefix + "check:*", count=1000))
    assert len(idempotency) == 200 and all(0 < client.ttl(k) <= CHECK_RETENTION for k in idempotency)
    status, cleaned = check(stack, "--jobs", "50", "--cleanup", "--json")
    assert status == 0 and isinstance(cleaned, dict) and cleaned["cleanedUp"] == 50
    assert len(list(client.scan_iter(match=keys.queue_keys("default").job_prefix + "*", count=1000))) == 200


@pytest.mark.slow
@pytest.mark.parametrize("chaos", ["--chaos", "--chaos=redis"])
def test_chaos_kills_what_it_says_and_nothing_accepted_is_lost(stack, chaos):
    before = stack.roles()
    status, found = check(stack, "--jobs", "500", chaos, "--json")
    assert status == 0, found
    assert isinstance(found, dict) and found["missing"] == found["dead"] == 0 and found["completed"] == 500
    killed = {kill["role"]: kill["pid"] for kill in found["kills"]}
    expected = {"consumer", "web"} | ({"redis"} if chaos.endswith("redis") else set())
    assert set(killed) == expected and all(before.get(pid) == role for role, pid in killed.items())
    wait_until(lambda: not set(killed.values()) & set(stack.roles()), 10, 0.1, "the killed processes replaced")
    report(f"forkline check {chaos}: 500 accepted, 0 missing, {found['rerun']} re-run, "
           f"{found['refusedAndRetried']} posts retried, p99 {found['latencyMs']['p99']} ms")


def test_a_job_made_to_go_missing_fails_the_check(stack):
    """A consumer that drops messages, played by the test: five messages popped from Redis and thrown away
    while the queue is paused, so their jobs stay queued and never finish."""
    client = redis_of(stack)
    queue = keys.queue_keys("default")
    assert stack.request("POST", "/queues/default/pause")[0] == 200
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(zip(("status", "found"), check(
        stack, "--jobs", "40", "--timeout", "15", "--json"), strict=True)))
    runner.start()
    wait_until(lambda: client.llen(queue.priority_list(5)) == 40, 20, 0.05, "the burst waiting in the queue")
    dropped = [client.rpop(queue.priority_list(5)) for _ in range(5)]
    assert all(dropped)
    assert stack.request("POST", "/queues/default/resume")[0] == 200
    runner.join(60)
    assert result["status"] == 1, result
    assert result["found"]["missing"] == 5 and result["found"]["completed"] == 35


def test_the_cloud_shape_passes_too(tmp_path):
    fl = Forkline("run", tmp_path, dict(FAST), args=("--cloud",))
    fl.env.pop("REDIS_URL", None)
    fl.start(timeout=60)
    try:
        status, found = check(fl, "--jobs", "100", "--json", "--cleanup")
        assert status == 0, found
        assert isinstance(found, dict) and found["completed"] == 100 and found["cleanedUp"] == 100
    finally:
        assert fl.stop(signal.SIGTERM, timeout=40) == 0, fl.output()[-3000:]


def test_chaos_without_a_local_stack_refuses_in_one_line(tmp_path):
    outside = Forkline("serve", tmp_path)  # not started: nothing listens on its port
    status, said = check(outside, "--chaos", "--jobs", "1", timeout=30)
    assert status == 2 and isinstance(said, str)
    assert said.count("\n") == 1 and "--chaos needs a `forkline run` stack" in said
