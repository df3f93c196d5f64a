"""What idle and slow clients do to one HTTP worker: the figures in docs/limits-and-proxies.md.

    .venv/bin/python bench/slow_clients.py idle 900
    .venv/bin/python bench/slow_clients.py slow-header 900
    .venv/bin/python bench/slow_clients.py slow-body 300

Starts Redis and `forkline serve` (1 worker) on loopback, measures wrk on /health,
opens the connections, measures again, and stops everything by pid.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.processes import Forkline, RedisProcess, children_of, request  # noqa: E402
from local.commands.bench import smaps_mb  # noqa: E402

OPENERS = {
    "idle": b"",
    "slow-header": b"GET /health HTTP/1.1\r\nHost: x\r\n",
    "slow-body": (b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000000\r\n\r\n" + b" " * 60000),
}


def wrk(port: int) -> str:
    out = subprocess.run(["wrk", "-t1", "-c64", "-d5s", "--latency", f"http://127.0.0.1:{port}/health"],
                         capture_output=True, text=True, timeout=60).stdout
    rps = next(line.split()[-1] for line in out.splitlines() if "Requests/sec" in line)
    p99 = next(line.split()[-1] for line in out.splitlines() if line.strip().startswith("99%"))
    return f"{rps} req/s, p99 {p99}"


def main(kind: str, count: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="forkline-slow-"))
    redis = RedisProcess(tmp / "redis")
    redis.start()
    fl = Forkline("serve", tmp, {"REDIS_URL": redis.url, "WEB_CONCURRENCY": "1"}).start()
    try:
        worker = children_of(fl.pid)[0]
        print(f"before: {wrk(fl.port)}, {smaps_mb(worker)[0]:.1f} MB")
        held = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", fl.port))
            if OPENERS[kind]:
                sock.sendall(OPENERS[kind])
            held.append(sock)
        time.sleep(1)
        started = time.monotonic()
        status = request(fl.port, "GET", "/health", timeout=10)[0]
        took = (time.monotonic() - started) * 1000
        print(f"{count} {kind} connections: GET /health {status} in {took:.1f} ms, "
              f"{smaps_mb(worker)[0]:.1f} MB, {len(os.listdir(f'/proc/{worker}/fd'))} fds")
        print(f"under them: {wrk(fl.port)}")
        for sock in held:
            sock.close()
    finally:
        fl.stop()
        redis.stop()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
