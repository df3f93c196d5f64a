"""Retry backoff as it really happens: the start times of a failing job's attempts, end to end.

The consumer's scheduler moves due retries once a second, and an attempt starts just
after a tick; so a whole-second delay always waits one extra tick (measured with base
1 s: 1.95, 3.0, 5.0 s apart), and a wrong schedule could hide in that second (linear
1, 2, 3 s would give ~2, 3, 4). Base 1.5 s keeps every schedule apart: expected
1.5, 3, 6 s (measured ~2, 4, 7), linear would be 1.5, 3, 4.5.
"""

import signal
import time

import pytest

from adapters.redis import keys
from harness.processes import Forkline, wait_until

BASE = 1.5
TICK = 1.0  # the consumer's scheduler moves due retries once a second
SLACK = TICK + 1.5  # the tick, plus the attempt itself, this test's polling and a busy machine


@pytest.mark.slow
def test_attempts_start_1_5_then_3_then_6_seconds_apart(tmp_path, redis_proc, redis_url):
    env = {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "1", "JOB_BACKOFF_BASE": str(BASE), "JOB_MAX_RETRIES": "3"}
    api = Forkline("serve", tmp_path, env).start()
    worker = Forkline("worker", tmp_path, env).start(wait_http=False)
    client = redis_proc.client()
    try:
        status, _, accepted = api.request("POST", "/jobs", {"message": "timing", "shouldFail": True})
        assert status == 202
        job = keys.job_key(accepted["jobId"])
        starts: dict[int, float] = {}
        deadline = time.monotonic() + 30
        while len(starts) < 4 and time.monotonic() < deadline:
            attempts = int(client.hget(job, "attempts") or 0)  # counted by the claim, as the attempt starts
            if attempts and attempts not in starts:
                starts[attempts] = time.monotonic()
            time.sleep(0.01)
        assert sorted(starts) == [1, 2, 3, 4], starts
        wait_until(lambda: client.hget(job, "state") == b"dead", 10, 0.05, "the job dead after 4 attempts")
    finally:
        assert worker.stop(signal.SIGTERM, timeout=30) == 0
        assert api.stop(signal.SIGTERM, timeout=30) == 0
        client.close()
    gaps = [round(starts[n + 1] - starts[n], 2) for n in (1, 2, 3)]
    print(f"\nattempts started {gaps} s apart")
    for n, gap in enumerate(gaps):
        delay = BASE * 2 ** n
        assert delay <= gap <= delay + SLACK, (n + 1, gap, gaps)
