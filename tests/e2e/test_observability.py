"""What an operator sees of a running stack: request ids, job lifecycle lines, process titles,
Prometheus metrics (checked by promtool) and the live workers."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness.processes import Forkline, children_of, is_gone, request, wait_until
from local.runtime.redis_server import free_port

ENV = {"WEB_CONCURRENCY": "2", "JOB_BACKOFF_BASE": "0.1", "WORKER_HEARTBEAT": "0.5", "ACCESS_LOG": "true",
       "LOG_LEVEL": "debug"}


def lines(fl: Forkline, event: str) -> list[dict]:
    return [json.loads(line) for line in fl.output().splitlines() if f'"event": "{event}"' in line]


def rid(headers: dict) -> str:
    return {k.lower(): v for k, v in headers.items()}["x-request-id"]


def title(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


def promtool_check(exposition: str) -> subprocess.CompletedProcess:
    assert os.path.exists("/usr/bin/promtool"), "promtool is missing: `make test` installs it (prometheus)"
    return subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True,
                          timeout=30)


def metric(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample; 0 when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in exposition.splitlines():
        match = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if match and match[1] == name and ",".join(sorted((match[2] or "").split(","))) == wanted:
            return float(match[3])
    return 0.0


@pytest.fixture
def stack(tmp_path, redis_url):
    fl = Forkline("run", tmp_path, {**ENV, "REDIS_URL": redis_url}).start(timeout=30)
    yield fl
    assert fl.stop(signal.SIGTERM, timeout=40) == 0


def test_a_jobs_lines_carry_its_id_and_its_requests_id_and_the_metrics_count_it(stack):
    status, headers, body = stack.request("POST", "/jobs", {"message": "hi", "shouldFail": False},
                                          headers={"X-Request-ID": "trace-7 from the client"})
    assert status == 202 and rid(headers) == "trace-7 from the client"
    good = body["jobId"]
    status, headers, body = stack.request("POST", "/jobs", {"message": "no", "shouldFail": True},
                                          headers={"X-Request-ID": "x" * 129})  # too long: replaced
    bad, bad_request = body["jobId"], rid(headers)
    assert re.fullmatch(r"[0-9a-f]{16}", bad_request)
    assert rid(stack.request("GET", "/health")[1]) != rid(stack.request("GET", "/health")[1])
    wait_until(lambda: stack.request("GET", f"/jobs/{bad}")[2]["state"] == "dead"
               and stack.request("GET", f"/jobs/{good}")[2]["state"] == "completed", 30, 0.1, "both jobs done")
    assert stack.request("GET", f"/jobs/{good}")[2]["requestId"] == "trace-7 from the client"
    assert stack.request("GET", f"/jobs/{bad}")[2]["requestId"] == bad_request

    def of(event: str, job_id: str) -> list[dict]:
        found = [line for line in lines(stack, event) if line["jobId"] == job_id]
        assert all(line["requestId"] == (bad_request if job_id == bad else "trace-7 from the client")
                   and line["type"] == "message" for line in found), found
        return found

    [accepted] = of("job_accepted", good)
    [started] = of("job_started", good)
    [completed] = of("job_completed", good)
    assert (accepted["level"], started["level"], completed["level"]) == ("info", "debug", "info")
    assert accepted["role"] == "web" and completed["role"] == "consumer" and completed["durationMs"] >= 0
    retrying = of("job_retrying", bad)
    assert [r["attempt"] for r in retrying] == [1, 2, 3] and all(r["level"] == "warning" for r in retrying)
    assert [r["delay"] for r in retrying] == [0.1, 0.2, 0.4] and "failed on purpose" in retrying[0]["error"]
    [dead] = of("job_dead", bad)
    assert dead["level"] == "warning" and dead["attempts"] == 4 and "failed on purpose" in dead["error"]
    access = [line for line in lines(stack, "access") if line.get("requestId") == "trace-7 from the client"]
    assert [(a["method"], a["path"], a["status"]) for a in access] == [("POST", "/jobs", 202)]
    assert access[0]["workerPid"] == accepted["pid"] and access[0]["durationMs"] > 0

    # Each process adds its counts to the shared files within a second.
    labels = {"type": "message", "queue": "default"}
    exposition = wait_until(lambda: (lambda e: e if metric(e, "forkline_jobs_dead_total", **labels) == 1
                                     and metric(e, "forkline_jobs_enqueued_total", **labels) == 2 else None)(
        stack.request("GET", "/metrics")[2]), 5, 0.2, "the jobs counted")
    checked = promtool_check(exposition)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert metric(exposition, "forkline_jobs_enqueued_total", type="message", queue="default") == 2
    assert metric(exposition, "forkline_jobs_started_total", type="message", queue="default") == 5
    assert metric(exposition, "forkline_jobs_completed_total", type="message", queue="default") == 1
    assert metric(exposition, "forkline_jobs_retried_total", type="message", queue="default") == 3
    assert metric(exposition, "forkline_jobs_dead_total", type="message", queue="default") == 1
    assert metric(exposition, "forkline_job_duration_seconds_count", type="message", queue="default") == 5
    assert metric(exposition, "forkline_http_requests_total", route="/jobs", method="POST", status="202") == 2
    assert metric(exposition, "forkline_http_request_duration_seconds_count", route="/jobs", method="POST") == 2
    assert metric(exposition, "forkline_http_requests_total", route="/health", method="GET", status="200") > 0
    assert metric(exposition, "forkline_http_request_duration_seconds_count", route="/health", method="GET") == 0
    assert metric(exposition, "forkline_queue_jobs", queue="default", state="dlq") == 1
    assert metric(exposition, "forkline_queue_up") == 1
    assert 'forkline_queue_paused{queue="slow"} 0.0' in exposition
    assert 'forkline_queue_jobs{queue="slow",state="waiting"} 0.0' in exposition


def listed_pids(stack) -> list[int]:
    return [w["pid"] for w in stack.request("GET", "/workers")[2]["items"]]


def test_process_titles_restarts_in_the_metrics_and_live_workers(stack):
    supervisor = stack.pid
    assert title(supervisor) == "forkline: supervisor"
    titles = wait_until(lambda: (lambda t: t if len(t) == 3 else None)(
        {title(pid): pid for pid in children_of(supervisor)}), 10, 0.1, "three children")
    assert set(titles) == {"forkline: web [0]", "forkline: web [1]", "forkline: consumer [0]"}
    consumer = titles["forkline: consumer [0]"]

    # The first heartbeat follows the consumer's start-up, a moment after its title is set.
    workers = wait_until(lambda: (lambda w: w if w["items"] else None)(stack.request("GET", "/workers")[2]),
                         5, 0.1, "the consumer's first heartbeat")
    [only] = workers["items"]
    # 5 threads on each of the two declared queues (WORKER_CONCURRENCY applies per queue)
    assert only["pid"] == consumer and only["concurrency"] == 10 and only["queues"] == ["default", "slow"]
    assert workers["beatSeconds"] == 0.5 and only["running"] == []
    os.kill(titles["forkline: web [1]"], signal.SIGKILL)
    killed_at = time.monotonic()
    os.kill(consumer, signal.SIGKILL)
    # A killed consumer's entry expires 3 beats (1.5 s) after its last beat; 1.5 s more for a busy machine.
    wait_until(lambda: consumer not in listed_pids(stack), 10, 0.05, "the killed consumer gone from GET /workers")
    gone_after = time.monotonic() - killed_at
    print(f"killed consumer gone from GET /workers after {gone_after:.2f} s")
    assert gone_after < 3 * 0.5 + 1.5, gone_after
    new = wait_until(lambda: (lambda p: p if len(p) == 1 else None)(listed_pids(stack)), 10, 0.05,
                     "the replacement listed")[0]
    assert new != consumer and new in children_of(supervisor)
    # A clean stop leaves at once: the entry is gone by the time the process has exited, not 3 beats later.
    os.kill(new, signal.SIGTERM)
    wait_until(lambda: is_gone(new), 20, 0.02, "the consumer stopped cleanly")
    assert new not in listed_pids(stack)
    exposition = wait_until(lambda: (lambda e: e if metric(e, "forkline_worker_restarts_total", role="consumer",
                                                           cause="killed by SIGKILL") == 1 else None)(
        stack.request("GET", "/metrics")[2]), 10, 0.2, "the restarts counted")
    assert metric(exposition, "forkline_worker_restarts_total", role="web", cause="killed by SIGKILL") == 1
    assert "forkline: web [1]" in {title(pid) for pid in children_of(supervisor)}  # the slot is taken again


def test_forkline_worker_alone_serves_its_metrics_on_metrics_port(tmp_path, redis_url):
    port = free_port()
    api = Forkline("serve", tmp_path, {**ENV, "REDIS_URL": redis_url}).start()
    worker = Forkline("worker", tmp_path, {**ENV, "REDIS_URL": redis_url, "METRICS_PORT": str(port)})
    worker.start(wait_http=False)
    try:
        for _ in range(3):
            assert api.request("POST", "/jobs", {"message": "m"})[0] == 202

        def scraped():
            try:
                return (lambda e: e if metric(e, "forkline_jobs_completed_total", type="message",
                                              queue="default") == 3 else None)(
                    request(port, "GET", "/metrics")[2])
            except OSError:
                return None

        exposition = wait_until(scraped, 20, 0.2, "the worker's metrics")
        assert promtool_check(exposition).returncode == 0
        assert metric(exposition, "forkline_queue_jobs", queue="default", state="waiting") == 0
        # counted by `serve`
        assert metric(exposition, "forkline_jobs_enqueued_total", type="message", queue="default") == 0
        assert metric(stack_metrics := api.request("GET", "/metrics")[2], "forkline_jobs_enqueued_total",
                      type="message", queue="default") == 3, stack_metrics
    finally:
        assert worker.stop(signal.SIGTERM, timeout=30) == 0
        assert api.stop(signal.SIGTERM, timeout=30) == 0
