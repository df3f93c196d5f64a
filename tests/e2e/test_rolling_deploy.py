"""Rolling deploys: older processes and today's side by side on one Redis, each older tree taken from
this repository's history.

From before named queues (the last commit with format-1 messages and one queue's keys): jobs the
old web process enqueued are run, counted and dead-lettered by today's consumer, and found by
today's API. From before the compact message (format 3, the last commit whose consumers read only
formats 1 and 2): with QUEUE_MESSAGE_FORMAT=2 today's web workers write what those consumers run;
without it, such a consumer buries a format-3 message (replayable) rather than misread it; today's
consumer runs both formats."""

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
BEFORE_COMPACT_MESSAGES = "c60c50aa54af3635c31de71442332b5e017735af"


def checkout(commit, tmp_path_factory):
    """forkline's tree at `commit`, from this repository's history."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit],
                             capture_output=True, timeout=60)
    assert archive.returncode == 0, f"this test needs the git history (a full clone): {archive.stderr.decode()}"
    dest = tmp_path_factory.mktemp("old-forkline")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


@pytest.fixture(scope="module")
def old_code(tmp_path_factory):
    return checkout(BEFORE_NAMED_QUEUES, tmp_path_factory)


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
        assert {message_format(m) for m in client.lrange(keys.queue_keys("default").list, 0, -1)} == {3}
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



def test_consumers_from_before_the_compact_format_run_format_2_and_bury_format_3(tmp_path, redis_url,
                                                                                tmp_path_factory):
    previous = checkout(BEFORE_COMPACT_MESSAGES, tmp_path_factory)
    client = redis.Redis.from_url(redis_url)
    (tmp_path / "old").mkdir()
    fast = {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "1", "JOB_BACKOFF_BASE": "0.1"}
    old = {**fast, "PYTHONPATH": str(previous)}
    old_cli = (sys.executable, "-m", "local.commands.cli")
    waiting = keys.queue_keys("default").list
    old_worker = Forkline("worker", tmp_path / "old", old, cli=old_cli).start(wait_http=False)
    pinned = Forkline("serve", tmp_path, {**fast, "QUEUE_MESSAGE_FORMAT": "2"}).start()
    old_api = Forkline("serve", tmp_path / "old", old, cli=old_cli).start()
    new_api = worker = None
    try:
        # Step one of the upgrade: today's web workers write format 2, which the old consumer runs.
        assert old_api.request("POST", "/queues/default/pause")[0] == 200
        pinned_ids = [pinned.request("POST", "/jobs", {"message": f"pinned {n}"})[2]["jobId"] for n in range(3)]
        assert {message_format(m) for m in client.lrange(waiting, 0, -1)} == {2}
        assert old_api.request("POST", "/queues/default/resume")[0] == 200
        for job_id in pinned_ids:
            wait_until(lambda job_id=job_id: state(pinned, job_id) == "completed", 20, 0.1, f"{job_id} completed")
        # Format 3 too early: the old consumer dead-letters it, nothing is misread or lost.
        new_api = Forkline("serve", tmp_path, fast).start()
        early = new_api.request("POST", "/jobs", {"message": "too early"})[2]["jobId"]
        wait_until(lambda: new_api.request("GET", f"/dlq/{early}")[0] == 200, 20, 0.1, "format 3 buried")
        assert "message format 3 is newer" in new_api.request("GET", f"/dlq/{early}")[2]["error"]
        stopped, old_worker = old_worker.stop(signal.SIGTERM, timeout=30), None
        assert stopped == 0
        # Step two: today's consumer runs what the old web process and today's write, and the replay.
        assert new_api.request("POST", "/queues/default/pause")[0] == 200
        old_ids = [old_api.request("POST", "/jobs", {"message": f"old {n}"})[2]["jobId"] for n in range(2)]
        new_ids = [new_api.request("POST", "/jobs", {"message": f"new {n}"})[2]["jobId"] for n in range(2)]
        assert [message_format(m) for m in client.lrange(waiting, 0, -1)] == [3, 3, 2, 2]
        assert new_api.request("POST", "/queues/default/resume")[0] == 200
        assert new_api.request("POST", f"/dlq/{early}/replay")[0] == 202
        worker = Forkline("worker", tmp_path, fast).start(wait_http=False)
        for job_id in [*old_ids, *new_ids, early]:
            wait_until(lambda job_id=job_id: state(new_api, job_id) == "completed", 20, 0.1, f"{job_id} completed")
        assert new_api.request("GET", f"/jobs/{old_ids[1]}")[2]["result"] == {"processed": "old 1"}
        assert new_api.request("GET", f"/jobs/{early}")[2]["result"] == {"processed": "too early"}
    finally:
        running = [proc for proc in (worker, old_worker, new_api, old_api, pinned) if proc is not None]
        codes = [proc.stop(signal.SIGTERM, timeout=30) for proc in running]  # every one stopped, then checked
        for proc, code in zip(running, codes, strict=True):
            assert code == 0, proc.output()[-2000:]
