"""The template's three curl commands against `forkline serve` and `forkline worker` started as
two separate processes on one Redis, as the containers run them (not `forkline run`)."""

import json
import signal
import subprocess

import pytest

from harness.processes import Forkline, wait_until
from tests.stats import template_figures

ENV = {"WEB_CONCURRENCY": "2", "JOB_BACKOFF_BASE": "0.2", "GRACEFUL_TIMEOUT": "10"}


@pytest.fixture
def serve_and_worker(tmp_path, redis_url):
    api = Forkline("serve", tmp_path, {**ENV, "REDIS_URL": redis_url}).start()
    worker = Forkline("worker", tmp_path, {**ENV, "REDIS_URL": redis_url}).start(wait_http=False)
    yield api, worker
    assert worker.stop(signal.SIGTERM, timeout=30) == 0, worker.output()[-2000:]
    assert api.stop(signal.SIGTERM, timeout=30) == 0, api.output()[-2000:]


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
