"""Two identical requests with one Idempotency-Key racing on a 2-process server, each pair counted
only when its two requests were served by different worker processes (from the access log)."""

import json
import signal
import threading

from adapters.redis import keys
from harness.processes import Forkline, wait_until

DEFAULT = keys.queue_keys("default")

CROSS_PROCESS_PAIRS = 20  # pairs whose two requests met in two different workers
MAX_PAIRS = 200


def served_by(fl: Forkline) -> dict[str, int]:
    """X-Request-ID -> the pid of the worker that answered POST /jobs (ACCESS_LOG lines)."""
    lines = [json.loads(line) for line in fl.output().splitlines() if line.startswith("{")]
    return {line["requestId"]: line["workerPid"] for line in lines
            if line.get("event") == "access" and line.get("path") == "/jobs"}


def test_racing_requests_with_one_key_on_two_workers_make_one_job(tmp_path, redis_url, redis_proc):
    fl = Forkline("serve", tmp_path, {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "2", "ACCESS_LOG": "true"}).start()
    results: dict[str, list] = {}
    try:
        def send(key: str, side: int, barrier: threading.Barrier) -> None:
            barrier.wait(timeout=10)
            status, _, body = fl.request("POST", "/jobs", {"message": key},
                                         {"Idempotency-Key": key, "X-Request-ID": f"{key}-{side}"})
            results[key].append((status, body["jobId"]))

        crossed: list[str] = []
        for n in range(MAX_PAIRS):
            key = f"race-{n}"
            results[key] = []
            barrier = threading.Barrier(2)
            pair = [threading.Thread(target=send, args=(key, side, barrier)) for side in (0, 1)]
            for thread in pair:
                thread.start()
            for thread in pair:
                thread.join(timeout=15)
            pids = wait_until(lambda key=key: (lambda s: (s[f"{key}-0"], s[f"{key}-1"])
                                               if f"{key}-1" in s and f"{key}-0" in s else None)(served_by(fl)),
                              10, 0.02, "both access lines")
            if pids[0] != pids[1]:
                crossed.append(key)
                if len(crossed) == CROSS_PROCESS_PAIRS:
                    break
    finally:
        assert fl.stop(signal.SIGTERM, timeout=30) == 0
    assert len(crossed) == CROSS_PROCESS_PAIRS, f"only {len(crossed)} of {len(results)} pairs met on two workers"
    for key, answers in results.items():
        assert sorted(status for status, _ in answers) == [200, 202], (key, answers)
        assert answers[0][1] == answers[1][1], (key, answers)
    client = redis_proc.client()
    assert client.llen(DEFAULT.list) == len(results)
    assert len(list(client.scan_iter(DEFAULT.job_prefix + "*"))) == len(results)
    print(f"\nidempotency: {len(crossed)} of {len(results)} racing pairs met on two workers; one job each")
