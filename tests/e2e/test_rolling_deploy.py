"""A rolling deploy: processes from before named queues (the last commit with format-1 messages and
one queue's keys) and today's side by side on one Redis. Jobs the old web process enqueued are run,
counted and dead-lettered by today's consumer, and found by today's API."""

import io
import signal
import subprocess
import sys
import tarfile

import pytest
import redis

from adapters.redis import keys
from adapters.redis.framing import message_format
from harness.processes import ROOT, Forkline, wait_until
from tests.stats import template_figures

BEFORE_NAMED_QUEUES = "d6539f478b276589230ce09d19aaa1e6d915dc19"


@pytest.fixture(scope="module")
def old_code(tmp_path_factory):
    """forkline's tree at the commit before named queues, from this repository's history."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", BEFORE_NAMED_QUEUES],
                             capture_output=True, timeout=60)
    assert archive.returncode == 0, f"this test needs the git history (a full clone): {archive.stderr.decode()}"
    dest = tmp_path_factory.mktemp("old-forkline")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def state(api, job_id):
    return api.request("GET", f"/jobs/{job_id}")[2]["state"]


def test_jobs_enqueued_by_the_old_code_are_run_counted_and_dead_lettered_by_the_new(tmp_path, redis_url, old_code):
    client = redis.Redis.from_url(redis_url)
    (tmp_path / "old").mkdir()
    fast = {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "1", "JOB_BACKOFF_BASE": "0.1"}
    # The old tree's own entry point (its CLI was local/cli.py then).
    old_api = Forkline("serve", tmp_path / "old", {**fast, "PYTHONPATH": str(old_code)},
                       cli=(sys.executable, "-m", "local.cli")).start()
    new_api = Forkline("serve", tmp_path, fast).start()
    worker = None
    try:
        old_ids = [old_api.request("POST", "/jobs", {"message": f"old {n}"})[2]["jobId"] for n in range(5)]
        old_failing = old_api.request("POST", "/jobs", {"message": "old boom", "shouldFail": True})[2]["jobId"]
        old_sleep = old_api.request("POST", "/jobs", {"type": "sleep", "seconds": 0.1})[2]["jobId"]
        waiting = client.lrange(keys.LEGACY.list, 0, -1)
        assert len(waiting) == 7 and {message_format(m) for m in waiting} == {1}  # the old format, the old keys
        new_ids = [new_api.request("POST", "/jobs", {"message": f"new {n}"})[2]["jobId"] for n in range(3)]
        assert all(job_id.startswith("default.") for job_id in new_ids)
        assert {message_format(m) for m in client.lrange(keys.queue_keys("default").list, 0, -1)} == {2}
        # Today's API finds the old jobs and counts them with today's.
        assert state(new_api, old_ids[0]) == "queued" and new_api.request("GET", "/queue/stats")[2]["waiting"] == 10

        worker = Forkline("worker", tmp_path, fast).start(wait_http=False)
        for job_id in [*old_ids, old_sleep, *new_ids]:
            wait_until(lambda job_id=job_id: state(new_api, job_id) == "completed", 20, 0.1, f"{job_id} completed")
        assert new_api.request("GET", f"/jobs/{old_ids[0]}")[2]["result"] == {"processed": "old 0"}
        wait_until(lambda: new_api.request("GET", f"/dlq/{old_failing}")[0] == 200, 20, 0.1, "old job dead-lettered")
        dead = new_api.request("GET", f"/dlq/{old_failing}")[2]
        assert dead["attempts"] == 4 and "Job failed on purpose: old boom" in dead["error"]
        assert dead["queue"] == "default"
        stats = new_api.request("GET", "/queue/stats")[2]
        assert template_figures(stats) == {"waiting": 0, "active": 0, "completed": 9, "failed": 1, "delayed": 0,
                                           "dlq": 1, "dlqPending": 0}
        assert stats["queues"]["default"]["completed"] == 9  # the old keys' jobs are `default` jobs
        # A replay from today's API puts the old job back where today's consumer drains it.
        assert new_api.request("POST", f"/dlq/{old_failing}/replay")[0] == 202
        wait_until(lambda: new_api.request("GET", f"/dlq/{old_failing}")[0] == 200, 20, 0.1, "dead again")
        assert new_api.request("GET", "/queue/stats")[2]["failed"] == 2
    finally:
        if worker is not None:
            assert worker.stop(signal.SIGTERM, timeout=30) == 0, worker.output()[-2000:]
        assert old_api.stop(signal.SIGTERM, timeout=30) == 0
        assert new_api.stop(signal.SIGTERM, timeout=30) == 0

