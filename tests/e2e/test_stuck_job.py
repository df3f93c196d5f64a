"""A job blocked inside one C call past JOB_TIMEOUT (docs/guarantees.md, "Job timeout"): the
JobTimeout cannot reach it, so 5 s later its consumer stops gracefully, gives the job back, the
supervisor starts a new consumer, and the job's next claim counts another attempt."""

import json
import signal
import time

from harness.processes import ROOT, Forkline, wait_until

BLOCKING = ROOT / "tests" / "blocking_job"  # the job type `block`: one time.sleep (sitecustomize.py)
JOB_TIMEOUT, GRACE = 1.0, 5.0  # the watchdog's grace before it calls a job stuck (adapters/job_timeout.py)


def record(fl, job_id):
    return fl.request("GET", f"/jobs/{job_id}")[2]


def test_a_consumer_with_a_job_stuck_in_c_code_stops_gives_it_back_and_is_replaced(tmp_path, redis_url):
    fl = Forkline("run", tmp_path, {"REDIS_URL": redis_url, "PYTHONPATH": f"{BLOCKING}:{ROOT}",
                                    "JOB_TIMEOUT": str(JOB_TIMEOUT), "GRACEFUL_TIMEOUT": "3",
                                    "WEB_CONCURRENCY": "1"}).start(timeout=30)
    try:
        consumer = wait_until(lambda: next((p for p, r in fl.roles().items() if r == "consumer"), None), 10, 0.1,
                              "the consumer")
        status, _, accepted = fl.request("POST", "/jobs", {"type": "block", "seconds": 120})
        assert status == 202, accepted
        job_id = accepted["jobId"]
        wait_until(lambda: record(fl, job_id)["state"] == "active", 10, 0.05, "the job running")
        claimed_at = time.monotonic()
        replacement = wait_until(lambda: next((p for p, r in fl.roles().items() if r == "consumer" and p != consumer),
                                              None), 30, 0.1, "a new consumer")
        replaced_after = time.monotonic() - claimed_at
        # The second claim of the same job, by the new consumer: one more attempt counted.
        wait_until(lambda: record(fl, job_id)["attempts"] == 2, 30, 0.1, "the job claimed again")
        assert record(fl, job_id)["state"] == "active"
        lines = [json.loads(line) for line in fl.output().splitlines() if line.startswith("{")]
        [stuck] = [line for line in lines if line.get("event") == "jobs_stuck" and line["pid"] == consumer]
        assert stuck["count"] == 1
        # It stopped by itself and gave the job back (not killed by the supervisor, not left to its lease).
        assert any(line.get("event") == "jobs_released" and line["pid"] == consumer for line in lines)
        [died] = [line for line in lines if line.get("event") == "worker_died" and line.get("child") == consumer]
        assert "exited with status 0" in died["message"], died
        print(f"stuck job's consumer replaced {replaced_after:.2f} s after the claim")
        assert replaced_after >= JOB_TIMEOUT + GRACE - 0.5  # not before the timeout and its grace
        assert replacement != consumer
    finally:
        assert fl.stop(signal.SIGTERM, timeout=40) in (0, -signal.SIGKILL), fl.output()[-3000:]
