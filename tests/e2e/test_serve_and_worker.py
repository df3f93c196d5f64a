"""The template's three curl commands against `forkline serve` and `forkline worker` started as
two separate processes on one Redis, as the containers run them (not `forkline run`)."""

import datetime
import http.client
import json
import signal
import subprocess

import pytest

from adapters.redis.client import RedisTarget
from adapters.redis.keys import queue_keys
from harness.processes import Forkline, RedisProcess, wait_until
from tests.serving import serving
from tests.stats import template_figures

ENV = {"WEB_CONCURRENCY": "2", "JOB_BACKOFF_BASE": "0.2", "GRACEFUL_TIMEOUT": "10"}


@pytest.fixture
def serve_and_worker(tmp_path, redis_url):
    with serving(tmp_path, {**ENV, "REDIS_URL": redis_url}) as pair:
        yield pair


def curl(*args: str) -> tuple[int, dict]:
    """Run curl as a user types it; the status and the parsed JSON body."""
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", *args],
                         capture_output=True, text=True, timeout=20, check=True).stdout
    body, _, status = out.rpartition("\n")
    return int(status), json.loads(body)


def test_the_templates_three_curl_commands(serve_and_worker):
    api, worker = serve_and_worker
    base = f"http://127.0.0.1:{api.port}"
    status, added = curl("-X", "POST", f"{base}/jobs", "-H", "Content-Type: application/json",
                         "-d", '{"message": "Hello from queue!", "shouldFail": false}')
    assert status == 202 and added["status"] == "queued"
    status, failing = curl("-X", "POST", f"{base}/jobs", "-H", "Content-Type: application/json",
                           "-d", '{"message": "This will fail", "shouldFail": true}')
    assert status == 202

    def settled():
        status, stats = curl(f"{base}/queue/stats")
        assert status == 200
        return stats if stats["completed"] == 1 and stats["dlq"] == 1 and not stats["dlqPending"] else None

    stats = wait_until(settled, 30, 0.2, "one job completed and one in the DLQ")
    assert template_figures(stats) == {"waiting": 0, "active": 0, "completed": 1, "failed": 1, "delayed": 0, "dlq": 1,
                     "dlqPending": 0}
    assert curl(f"{base}/jobs/{added['jobId']}")[1]["result"] == {"processed": "Hello from queue!"}
    assert curl(f"{base}/jobs/{failing['jobId']}")[1]["attempts"] == 4
    # The jobs ran in the worker process; the server runs no consumer.
    assert f"job {failing['jobId']} is dead after 4 attempts" in worker.output()
    assert "consumer started" in worker.output() and "consumer started" not in api.output()


def test_a_redis_on_a_unix_socket_serves_api_and_consumers(tmp_path):
    """REDIS_URL=unix://<path>, Redis listening on no TCP port: every process (the breaker's connections
    included) reaches it by its socket."""
    redis_proc = RedisProcess(tmp_path / "redis", persist=False, unix_socket=tmp_path / "redis.sock")
    redis_proc.start()
    try:
        with serving(tmp_path, {**ENV, "REDIS_URL": redis_proc.url}) as (api, _):
            assert api.request("GET", "/health")[2]["dependencies"] == {"redis": "up"}
            ok = api.request("POST", "/jobs", {"message": "by socket"})[2]["jobId"]
            failing = api.request("POST", "/jobs", {"message": "nope", "shouldFail": True})[2]["jobId"]
            wait_until(lambda: api.request("GET", f"/jobs/{failing}")[2]["state"] == "dead", 30, 0.2,
                       "the failing job dead after its retries")
            assert api.request("GET", f"/jobs/{ok}")[2]["result"] == {"processed": "by socket"}
            assert redis_proc.client().hget(queue_keys("default").job(ok), "state") == b"completed"
    finally:
        redis_proc.stop()
    assert RedisTarget(redis_proc.url).describe() == f"unix://{tmp_path / 'redis.sock'}"  # as warnings name it


def test_head_through_bjoern_sends_headers_only_and_the_connection_serves_on(tmp_path, redis_url):
    """What an uptime monitor or load balancer sends: HEAD answers as GET without the body, so the
    next response on the same keep-alive connection is read whole."""
    api = Forkline("serve", tmp_path, {**ENV, "REDIS_URL": redis_url}).start()
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        for path in ("/health", "/", "/queue/stats"):
            conn.request("HEAD", path)
            head = conn.getresponse()
            assert head.status == 200 and head.read() == b"" and int(head.getheader("content-length")) > 0
            conn.request("GET", path)
            got = conn.getresponse()
            body = got.read()
            assert got.status == 200 and len(body) == int(got.getheader("content-length")) and json.loads(body)
        status = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "-I",
                                 f"http://127.0.0.1:{api.port}/health"], capture_output=True, text=True, timeout=20)
        assert status.stdout == "200"
    finally:
        conn.close()
        assert api.stop(signal.SIGTERM, timeout=30) == 0, api.output()[-2000:]


def test_a_full_log_disk_leaves_requests_and_jobs_alone(tmp_path, redis_url):
    """LOG_DIR's file for today on a device with no space (/dev/full: ENOSPC on every write)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / f"forkline-{datetime.datetime.now(datetime.UTC):%Y-%m-%d}.log").symlink_to("/dev/full")
    env = {**ENV, "REDIS_URL": redis_url, "LOG_DIR": str(logs)}
    with serving(tmp_path, env) as (api, worker):
        accepted = [api.request("POST", "/jobs", {"message": f"m{n}"})[2]["jobId"] for n in range(20)]
        wait_until(lambda: all(api.request("GET", f"/jobs/{i}")[2]["state"] == "completed" for i in accepted),
                   30, 0.2, "every job completed")
    output = api.output() + worker.output()
    assert "Traceback" not in output and "Logging error" not in output
    notes = [line for line in output.splitlines() if "log line(s) dropped" in line]
    pids = {line.split("]")[0] for line in notes}
    assert notes and len(notes) == len(pids), notes  # one note per process within the minute
    assert '"event": "job_completed"' in worker.output() or "job completed" in worker.output()  # stdout has them
