"""`forkline serve` as a real process tree: forks, deaths, signals, reloads."""

import datetime
import itertools
import json
import os
import signal
import threading
import time

import pytest

from harness.processes import Forkline, children_of, is_gone, request, wait_until
from local.runtime.children import Child
from local.runtime.supervisor import Arbiter


@pytest.fixture
def serve(tmp_path, redis_url):
    started = []

    def start(workers=2, **env):
        fl = Forkline("serve", tmp_path, {"REDIS_URL": redis_url, "WEB_CONCURRENCY": str(workers),
                                          "APP_FACTORY": "tests.local.runtime.apps:with_slow_route", **env})
        started.append(fl)
        return fl.start()

    yield start
    for fl in started:
        fl.stop(signal.SIGTERM, timeout=20)


def worker_pids(fl, expected, timeout=10.0):
    return wait_until(lambda: (lambda p: p if len(p) == expected else None)(sorted(children_of(fl.proc.pid))),
                      timeout, 0.05, f"{expected} workers")


def test_one_worker_per_process_answers_with_its_pid(serve):
    fl = serve(workers=2)
    pids = set(worker_pids(fl, 2))
    seen: set[int] = set()
    # Each worker answers with its own pid; which one takes a connection is up to the kernel (and, on a
    # busy machine, to which one is running): ask until both have answered.
    wait_until(lambda: seen.add(fl.request("GET", "/")[2]["workerPID"]) or seen == pids or not seen <= pids,
               30, 0.0, "both workers answering")
    assert seen == pids, (seen, pids)


def test_a_killed_worker_is_replaced_within_a_second_under_traffic(serve):
    fl = serve(workers=2)
    old = worker_pids(fl, 2)
    time.sleep(2.1)  # past the boot window: this is a crash, not a boot failure
    answers, errors, stop = [], [], threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                status, _, body = request(fl.port, "GET", "/", timeout=5)
                answers.append((time.monotonic(), status, body.get("workerPID")))
            except OSError as exc:
                errors.append((time.monotonic(), repr(exc)))

    clients = [threading.Thread(target=traffic) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        time.sleep(0.5)
        victim = old[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        new = wait_until(lambda: (lambda p: p if len(p) == 2 and victim not in p else None)(children_of(fl.pid)),
                         5, 0.02, "a replacement worker")
        replaced_in = time.monotonic() - killed_at
        replacement = (set(new) - set(old)).pop()
        wait_until(lambda: any(pid == replacement for _, _, pid in answers), 5, 0.02, "the replacement serving")
        time.sleep(0.5)
    finally:
        stop.set()
        for client in clients:
            client.join(10)
    assert replaced_in < 1.5, replaced_in
    after = [(status, pid) for at, status, pid in answers if at > killed_at + replaced_in + 0.1]
    assert after and all(status == 200 for status, _ in after)
    assert {pid for _, pid in after} == set(new)  # both workers answer again, the replacement among them
    assert not any(pid == victim for at, _, pid in answers if at > killed_at + 0.1)
    # Only a request the killed worker had in hand may fail, right at the kill.
    assert len(errors) <= 3 and all(abs(at - killed_at) < 1.0 for at, _ in errors), errors
    assert "killed by SIGKILL" in fl.output() and str(victim) in fl.output()


def test_sigterm_lets_in_flight_requests_finish_then_exits_0(serve):
    fl = serve(workers=1)
    worker_pids(fl, 1)
    result = {}
    t = threading.Thread(target=lambda: result.update(r=fl.request("GET", "/slow?s=2", timeout=10)))
    t.start()
    time.sleep(0.5)
    code = fl.stop(signal.SIGTERM, timeout=20)
    t.join(10)
    assert result["r"][0] == 200 and result["r"][2] == {"slept": True}
    assert code == 0
    deaths = [json.loads(line) for line in fl.output().splitlines() if '"worker_died"' in line]
    assert deaths and all(d["cause"] == "exited with status 0" for d in deaths), deaths


def test_grace_period_is_bounded(serve):
    fl = serve(workers=1, GRACEFUL_TIMEOUT="1")
    worker_pids(fl, 1)
    t = threading.Thread(target=lambda: _swallow(lambda: fl.request("GET", "/slow?s=30", timeout=40)))
    t.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert fl.stop(signal.SIGTERM, timeout=20) == 0
    assert time.monotonic() - started < 10
    assert "did not drain within GRACEFUL_TIMEOUT (shutdown): SIGKILL" in fl.output()
    [death] = [json.loads(line) for line in fl.output().splitlines() if '"worker_died"' in line]
    assert death["cause"] == "killed by SIGKILL" and death["drain"] == "shutdown"
    # Never before the deadline; at it, give or take a busy machine (next_wakeup below: not a loop turn later).
    assert 1.0 <= death["drained_in"] < 1.0 + 1.5, death
    t.join(40)


def test_the_loop_wakes_at_the_next_drain_deadline_not_a_turn_later():
    arbiter = Arbiter.__new__(Arbiter)  # only its children matter here
    now = time.monotonic()
    arbiter.children = {1: Child(1, "web", now), 2: Child(2, "web", now)}
    assert arbiter.next_wakeup() == 1.0  # nothing draining: a turn a second
    arbiter.children[2].begin_drain("shutdown", 0.3)
    assert 0.2 < arbiter.next_wakeup() <= 0.3
    arbiter.children[2].killed = True  # once killed, its deadline no longer counts
    assert arbiter.next_wakeup() == 1.0
    arbiter.children[1].deadline = time.monotonic() - 5  # overdue: at once (the 10 ms floor)
    assert arbiter.next_wakeup() == 0.01


def _swallow(fn):
    try:
        fn()
    except OSError:
        pass


def test_sighup_replaces_workers_without_refusing_connections(serve):
    fl = serve(workers=2)
    old = set(worker_pids(fl, 2))
    errors, statuses, stop = [], [], threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                statuses.append(request(fl.port, "GET", "/health", timeout=5)[0])
            except OSError as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)

    os.kill(fl.proc.pid, signal.SIGHUP)
    new = wait_until(lambda: (lambda p: p if len(p) == 2 and not (p & old) else None)(set(children_of(fl.proc.pid))),
                     20, 0.05, "all workers replaced")
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(10)
    assert errors == [] and set(statuses) == {200} and len(statuses) > 100
    assert new.isdisjoint(old)


def test_ttin_and_ttou_add_and_remove_a_worker(serve):
    fl = serve(workers=1)
    worker_pids(fl, 1)
    os.kill(fl.proc.pid, signal.SIGTTIN)
    worker_pids(fl, 2)
    os.kill(fl.proc.pid, signal.SIGTTOU)
    worker_pids(fl, 1)


def at(line: dict) -> float:
    """A log line's time, in Unix seconds (the supervisor's own clock)."""
    return datetime.datetime.fromisoformat(line["time"]).timestamp()


def test_a_worker_that_crashes_at_start_backs_off(serve, tmp_path, redis_url):
    fl = Forkline("serve", tmp_path, {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "1",
                                      "APP_FACTORY": "tests.local.runtime.apps:broken"})
    fl.start(wait_http=False)
    try:
        time.sleep(6)
        assert fl.proc.poll() is None, "the supervisor must stay up"
        lines = [json.loads(line) for line in fl.output().splitlines() if line.startswith("{")]
        births = [at(line) for line in lines if line.get("event") == "worker_born"]
        delays = [line["delay"] for line in lines if line.get("event") == "boot_backoff"]
        # backoff 0.5 + 1 + 2 + 4 s: at most 5 births in 6 s, where a fork loop makes thousands
        assert 3 <= len(births) <= 5, len(births)
        assert delays[:3] == [0.5, 1.0, 2.0], delays
        # Each next child waits out its delay (plus the broken child's own start-up, which comes first).
        gaps = [later - earlier for earlier, later in zip(births, births[1:], strict=False)]
        assert all(gap >= delay - 0.05 for gap, delay in zip(gaps, delays, strict=False)), (gaps, delays)
    finally:
        assert fl.stop(signal.SIGTERM, timeout=20) == 0


def test_a_worker_stuck_past_web_timeout_is_replaced(serve):

    fl = serve(workers=1, WEB_TIMEOUT="2")
    [stuck] = worker_pids(fl, 1)
    t = threading.Thread(target=lambda: _swallow(lambda: fl.request("GET", "/slow?s=60", timeout=30)))
    t.start()
    new = wait_until(lambda: (lambda p: p if len(p) == 1 and stuck not in p else None)(children_of(fl.proc.pid)),
                     10, 0.1, "the stuck worker replaced")
    assert new and "stuck in a request" in fl.output()
    wait_until(lambda: fl.request("GET", "/health")[0] == 200, 10, 0.1, "a healthy worker")
    t.join(30)
    assert is_gone(stuck)


def test_workers_are_recycled_after_max_requests(serve):
    fl = serve(workers=1, WEB_MAX_REQUESTS="40", WEB_MAX_REQUESTS_JITTER="0")
    answers = [fl.request("GET", "/") for _ in range(125)]
    assert all(status == 200 for status, _, _ in answers)  # no request lost to a recycle
    runs = [len(list(group)) for _, group in itertools.groupby(body["workerPID"] for _, _, body in answers)]
    # The first worker also answered the start-up health checks.
    assert runs[0] <= 40 and runs[1:3] == [40, 40], runs
    output = fl.output()
    assert output.count('"worker_recycled"') >= 3 and '"boot_backoff"' not in output


def test_a_worker_past_the_memory_ceiling_is_replaced(serve):
    fl = serve(workers=1, WEB_MAX_RSS_MB="128")
    leaky = fl.request("GET", "/")[2]["workerPID"]
    assert fl.request("GET", "/leak?mb=100")[0] == 200
    wait_until(lambda: (lambda pids: pids and leaky not in pids)(children_of(fl.proc.pid)), 10, 0.1, "a new worker")
    assert fl.request("GET", "/")[2]["workerPID"] != leaky
    assert "over WEB_MAX_RSS_MB=128" in fl.output()
