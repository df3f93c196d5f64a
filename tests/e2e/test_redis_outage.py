"""Redis stopped (SIGKILL) during a burst of POST /jobs, then started again on its AOF."""

import json
import signal
import threading
import time

from harness.processes import Forkline, RedisProcess, wait_until


def burst(fl: Forkline, stop: threading.Event, results: list, errors: list) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        try:
            status, headers, body = fl.request("POST", "/jobs", {"message": f"m{n}"}, timeout=5)
            retry_after = {k.lower(): v for k, v in headers.items()}.get("retry-after")
            results.append((status, retry_after, body, time.monotonic()))
        except OSError as exc:  # the HTTP server itself must never refuse or drop
            errors.append(repr(exc))


def events(fl: Forkline, name: str) -> list[dict]:
    found = []
    for line in fl.output().splitlines():
        if f'"{name}"' in line:
            found.append(json.loads(line))
    return found


def test_redis_outage_during_a_burst_loses_no_accepted_job(tmp_path):
    redis = RedisProcess(tmp_path / "redis", persist=True)
    redis.start()
    env = {"REDIS_URL": redis.url, "WEB_CONCURRENCY": "2", "JOB_LEASE": "2", "GRACEFUL_TIMEOUT": "10"}
    api = Forkline("serve", tmp_path, env).start()
    worker = Forkline("worker", tmp_path, env).start(wait_http=False)
    stop, results, errors = threading.Event(), [], []
    senders = [threading.Thread(target=burst, args=(api, stop, results, errors)) for _ in range(2)]
    try:
        for sender in senders:
            sender.start()
        time.sleep(1.5)
        redis.stop(signal.SIGKILL)
        down_at = time.monotonic()
        # /health turns degraded within about a second.
        wait_until(lambda: api.request("GET", "/health", timeout=3)[0] == 503, 3, 0.1, "degraded health")
        assert api.request("GET", "/health")[2]["dependencies"] == {"redis": "down"}
        time.sleep(2.5)
        redis.start()  # same port, same AOF
        up_at = time.monotonic()
        time.sleep(2.0)
        stop.set()
        for sender in senders:
            sender.join(timeout=15)
        assert not errors, errors[:5]
        statuses = [status for status, *_ in results]
        assert set(statuses) <= {202, 503}, sorted(set(statuses))
        assert statuses.count(503) > 0 and statuses.count(202) > 0
        assert all(retry_after == "1" for status, retry_after, *_ in results if status == 503)
        # Every 503 was answered while Redis was down (nothing hung for long) ...
        late = [t for status, _, _, t in results if status == 503 and not down_at - 0.5 <= t <= up_at + 1.5]
        assert not late, late
        # ... and every 202 job completes.
        accepted = [body["jobId"] for status, _, body, _ in results if status == 202]
        print(f"\n{len(accepted)} accepted, {statuses.count(503)} refused with 503")
        for job_id in accepted:
            wait_until(lambda job_id=job_id: api.request("GET", f"/jobs/{job_id}")[2].get("state") == "completed",
                       30, 0.1, f"job {job_id} completed")
        assert api.request("GET", "/health")[0] == 200
    finally:
        stop.set()
        worker_code = worker.stop(signal.SIGTERM, timeout=30)
        api_code = api.stop(signal.SIGTERM, timeout=30)
        redis.stop()
    assert (worker_code, api_code) == (0, 0)
    for fl in (api, worker):
        # No process died or restarted; the outage is logged once per process, each way.
        deaths = [e for e in events(fl, "worker_died") if e["cause"] != "exited with status 0"]
        assert not deaths, fl.output()[-2000:]
        downs, ups = events(fl, "dependency_down"), events(fl, "dependency_up")
        assert downs, fl.output()[-3000:]
        for pid in {e["pid"] for e in downs + ups}:
            per_pid = [e["event"] for e in downs + ups if e["pid"] == pid]
            assert per_pid == ["dependency_down", "dependency_up"], (pid, per_pid)
        assert "Error reading" not in fl.output()
