"""Retry backoff as it really happens: the start times of the template's own failing job's attempts,
end to end, with the defaults (JOB_BACKOFF_BASE=2, JOB_MAX_RETRIES=3): 2, 4 and 8 s apart, as the
Node template's. A retry is moved by the claim itself at its time, and an idle consumer's wait ends
then (adapters/huey/storage.py), so no scheduler tick is added.
"""

import signal
import time

import pytest

from adapters.redis import keys
from harness.processes import Forkline, wait_until

EXPECTED = (2.0, 4.0, 8.0)
# Measured within 0.25 s on a quiet machine (the docs give the figures); 0.5 s holds on a busy one.
MARGIN = 0.5


@pytest.mark.slow
def test_the_template_s_failing_job_is_retried_2_4_and_8_seconds_apart(tmp_path, redis_proc, redis_url):
    env = {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "1"}  # the defaults: 4 attempts, base 2 s
    api = Forkline("serve", tmp_path, env).start()
    worker = Forkline("worker", tmp_path, env).start(wait_http=False)
    client = redis_proc.client()
    try:
        status, _, accepted = api.request("POST", "/jobs", {"message": "Hello from queue!", "shouldFail": True})
        assert status == 202
        job = keys.job_key(accepted["jobId"])
        starts: dict[int, float] = {}
        deadline = time.monotonic() + 40
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
    gaps = [round(starts[n + 1] - starts[n], 3) for n in (1, 2, 3)]
    print(f"\nattempts started {gaps} s apart")
    assert all(abs(gap - delay) <= MARGIN for gap, delay in zip(gaps, EXPECTED, strict=True)), gaps
