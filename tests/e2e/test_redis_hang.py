"""A Redis that hangs (its process SIGSTOPped for 5 s) while 4 clients post to the 3 default web workers:
each worker's circuit breaker (adapters/redis/breaker.py) turns the wait into fast 503s, /health says
so within a second, the breaker closes by itself once Redis answers, and nothing accepted is lost."""

import os
import signal
import threading
import time

import pytest

from harness.processes import Forkline, RedisProcess, wait_until
from tests.bursts import PostBurst

HANG = 5.0
# The targets, and what this test asserts (a busy 2-core machine runs the suite beside it).
HEALTH_TARGET, POST_TARGET, BUSY = 1.0, 1.5, 1.0


@pytest.mark.slow
def test_a_hung_redis_gets_fast_503s_and_nothing_accepted_is_lost(tmp_path):
    redis_proc = RedisProcess(tmp_path / "redis")
    redis_proc.start()
    env = {"REDIS_URL": redis_proc.url, "WEB_CONCURRENCY": "3", "GRACEFUL_TIMEOUT": "5"}
    api = Forkline("serve", tmp_path, env).start()
    worker = Forkline("worker", tmp_path, env).start(wait_http=False)
    burst = PostBurst(api, senders=4)
    posts = burst.answers
    healths: list[tuple[float, float, int]] = []
    stop = threading.Event()

    def health() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                status = api.request("GET", "/health", timeout=20)[0]
            except OSError:
                status = 0
            healths.append((sent, time.monotonic() - sent, status))
            time.sleep(0.1)

    threads = [threading.Thread(target=health)]
    try:
        burst.start()
        for thread in threads:
            thread.start()
        wait_until(lambda: burst.count(202) >= 200, 30, 0.05, "the posts under way")
        assert redis_proc.proc is not None
        os.kill(redis_proc.proc.pid, signal.SIGSTOP)
        hung_at = time.monotonic()
        time.sleep(HANG)
        os.kill(redis_proc.proc.pid, signal.SIGCONT)
        resumed_at = time.monotonic()
        wait_until(lambda: burst.count(202, sent_after=resumed_at) > 0, 10, 0.05, "202s again")
        back_after = min(p.answered for p in posts if p.status == 202 and p.sent > resumed_at) - resumed_at
        time.sleep(0.5)
    finally:
        stop.set()
        burst.stop()
        for thread in threads:
            thread.join(30)
    try:
        assert {p.status for p in posts} <= {202, 503}, {p.status for p in posts}  # never a 500, never a dropped call
        during = [p for p in posts if hung_at <= p.sent < resumed_at]
        unavailable = [p for p in during if p.status == 503]
        assert unavailable and all(p.headers.get("retry-after") == "1" for p in unavailable)
        slowest_post = max(p.seconds for p in posts if p.answered >= hung_at and p.sent < resumed_at)
        health_during = [h for h in healths if hung_at <= h[0] < resumed_at]
        slowest_health = max(h[1] for h in health_during)
        first_503 = min(h[0] + h[1] for h in health_during if h[2] == 503) - hung_at
        print(f"\nRedis hung {HANG:.0f} s: slowest POST {slowest_post:.2f} s, slowest /health {slowest_health:.2f} s, "
              f"/health 503 {first_503:.2f} s into the hang; {len(unavailable)} POSTs answered 503; "
              f"202 again {back_after:.2f} s after Redis resumed")
        assert slowest_health <= HEALTH_TARGET + BUSY, slowest_health
        assert slowest_post <= POST_TARGET + BUSY, slowest_post
        accepted = burst.accepted()
        wait_until(lambda: api.request("GET", "/queue/stats")[2]["completed"] >= len(accepted), 60, 0.5,
                   "every accepted job completed")
        assert all(api.request("GET", f"/jobs/{job_id}")[2]["state"] == "completed" for job_id in accepted[-50:])
    finally:
        assert worker.stop(signal.SIGTERM, timeout=30) == 0, worker.output()[-2000:]
        assert api.stop(signal.SIGTERM, timeout=30) == 0, api.output()[-2000:]
        redis_proc.stop()
