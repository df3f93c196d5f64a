"""Two identical requests with one Idempotency-Key racing on a 2-process server."""

import signal
import threading

from adapters.redis import keys
from harness.processes import Forkline

DEFAULT = keys.queue_keys("default")

PAIRS = 30


def test_racing_requests_with_one_key_make_one_job(tmp_path, redis_url, redis_proc):
    fl = Forkline("serve", tmp_path, {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "2"}).start()
    results: dict[str, list] = {f"race-{i}": [] for i in range(PAIRS)}
    try:
        def send(key: str, barrier: threading.Barrier) -> None:
            barrier.wait(timeout=10)
            status, _, body = fl.request("POST", "/jobs", {"message": key}, {"Idempotency-Key": key})
            results[key].append((status, body["jobId"]))

        for key in results:
            barrier = threading.Barrier(2)
            pair = [threading.Thread(target=send, args=(key, barrier)) for _ in range(2)]
            for thread in pair:
                thread.start()
            for thread in pair:
                thread.join(timeout=15)
    finally:
        assert fl.stop(signal.SIGTERM, timeout=30) == 0
    for key, answers in results.items():
        assert sorted(status for status, _ in answers) == [200, 202], (key, answers)
        assert answers[0][1] == answers[1][1], (key, answers)
    client = redis_proc.client()
    assert client.llen(DEFAULT.list) == PAIRS
    assert len(list(client.scan_iter(DEFAULT.job_prefix + "*"))) == PAIRS
