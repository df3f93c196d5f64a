"""Backlog drain, the same way for forkline and the Node template (BullMQ).

    .venv/bin/python bench/backlog_drain.py forkline 20000
    .venv/bin/python bench/backlog_drain.py node 20000      # needs ../shared/bench/seed-node

Starts a throwaway Redis (../shared/bench/redis.sh, no persistence) and the API
server only, POSTs N no-op jobs from 8 threads, then starts the queue worker
with its default settings and times how long it takes to complete them all.
Prints one JSON line. Stops every process it started by pid.
"""

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("BENCH_DIR", ROOT.parent / "shared" / "bench"))
SEED = BENCH / "seed-node"
sys.path.insert(0, str(ROOT))
from local.bench import post_jobs  # noqa: E402
from local.processes import stop_pid  # noqa: E402
from local.redis_server import free_port  # noqa: E402


def completed(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/queue/stats")
    stats = json.loads(conn.getresponse().read())
    conn.close()
    return int(stats.get("completed", 0))


def wait_http(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            completed(port)
            return
        except (OSError, ValueError):
            time.sleep(0.1)
    raise RuntimeError("the server did not answer")


def main(system: str, count: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="backlog-"))
    redis_port, port = free_port(), free_port()
    env = {**os.environ, "BENCH_STATE_DIR": str(tmp)}
    subprocess.run([str(BENCH / "redis.sh"), "start", str(redis_port), str(tmp / "redis")], env=env, check=True,
                   timeout=30, stdout=subprocess.DEVNULL)
    procs: list[subprocess.Popen] = []
    try:
        if system == "node":
            app_env = {**env, "NODE_ENV": "production", "HOST": "127.0.0.1", "PORT": str(port),
                       "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_port), "LOG_DIR": str(tmp / "logs"),
                       "LOG_LEVEL": "warn"}
            server = ["node", "src/server.js"], SEED
            worker = ["node", "src/queue/worker.js"], SEED
            body = {"message": "Hello", "shouldFail": False}
        else:
            app_env = {**env, "HOST": "127.0.0.1", "PORT": str(port), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                       "LOG_DIR": str(tmp / "logs"), "LOG_LEVEL": "warning"}
            server = [str(ROOT / ".venv/bin/forkline"), "serve"], tmp
            worker = [str(ROOT / ".venv/bin/forkline"), "worker"], tmp
            body = {"type": "noop"}
        out = open(tmp / "out.log", "wb")
        procs.append(subprocess.Popen(server[0], cwd=server[1], env=app_env, stdout=out, stderr=out))
        wait_http(port, procs[0])
        start = time.monotonic()
        posted = post_jobs(port, count, body)
        enqueue_s = time.monotonic() - start
        before = completed(port)
        procs.append(subprocess.Popen(worker[0], cwd=worker[1], env=app_env, stdout=out, stderr=out))
        start = time.monotonic()
        first = None
        while completed(port) - before < posted and time.monotonic() - start < 600:
            if first is None and completed(port) > before:
                first = time.monotonic()  # the worker's start-up is not drain time
            time.sleep(0.05)
        took = time.monotonic() - (first or start)
        print(json.dumps({"system": system, "jobs": posted, "enqueue_s": round(enqueue_s, 2),
                          "drain_s": round(took, 2), "backlog_drain_jobs_per_s": round(posted / took, 1),
                          "loadavg": Path("/proc/loadavg").read_text().split()[:3]}))
    finally:
        for proc in reversed(procs):
            stop_pid(proc, signal.SIGTERM, timeout=30)
        subprocess.run([str(BENCH / "redis.sh"), "stop", str(redis_port)], env=env, timeout=30,
                       stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
