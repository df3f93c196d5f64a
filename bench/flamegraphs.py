"""py-spy flame graphs of a web worker under POST /jobs load and of the consumer during a drain.

    .venv/bin/python bench/flamegraphs.py LABEL [--jobs 100000] [--seconds 10]   # py-spy: the test extra

Starts a throwaway Redis, `forkline serve` and `forkline worker` (default settings),
records one web worker while wrk POSTs jobs (64 connections, SECONDS s), stops the
worker, POSTs JOBS jobs, starts the worker again and records its consumer process
while it drains them. Writes bench/flamegraphs/LABEL-web-post.svg and
LABEL-consumer-drain.svg: py-spy at 250 Hz, only samples of the thread holding the GIL
(Python's CPU time, not waits for Redis or for a lock; py-spy's --nonblocking mode finds
no such samples in the consumer's threads, so the process is paused for each
sample). With one consumer process per core, one of them is recorded. Every process is
stopped by its pid.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "flamegraphs"
sys.path.insert(0, str(ROOT))
from bench.measuring import BENCH, throwaway_redis  # noqa: E402
from harness.processes import stop_pid  # noqa: E402
from local.commands.bench import descendants, get, post_jobs  # noqa: E402
from local.runtime.redis_server import free_port  # noqa: E402

PY_SPY = str(ROOT / ".venv" / "bin" / "py-spy")


def record(pid: int, svg: Path, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([PY_SPY, "record", "--gil", "-r", "250", "-d", str(int(seconds)),
                             "-p", str(pid), "-o", str(svg)], stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("label")
    parser.add_argument("--jobs", type=int, default=100000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="flamegraphs-"))
    with throwaway_redis(tmp) as redis_port:
        record_both(args.label, args.jobs, args.seconds, tmp, redis_port)


def record_both(label: str, jobs: int, seconds: int, tmp: Path, redis_port: int) -> None:
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "LOG_DIR": str(tmp / "logs"), "DATA_DIR": str(tmp)}
    forkline = str(ROOT / ".venv" / "bin" / "forkline")
    out = open(tmp / "out.log", "wb")
    procs = [subprocess.Popen([forkline, "serve"], cwd=tmp, env=env, stdout=out, stderr=out),
             subprocess.Popen([forkline, "worker"], cwd=tmp, env=env, stdout=out, stderr=out)]
    try:
        time.sleep(4)
        get(port, "/health")
        web = descendants(procs[0].pid)[1]
        spy = record(web, OUT / f"{label}-web-post.svg", seconds)
        subprocess.run(["wrk", "-t1", "-c64", f"-d{seconds}s", "-s", str(BENCH / "lua" / "post_job.lua"),
                        f"http://127.0.0.1:{port}/jobs"], capture_output=True, timeout=seconds + 30, check=True)
        spy.wait(60)
        stop_pid(procs[1], signal.SIGTERM, timeout=120)
        post_jobs(port, jobs, {"type": "noop"})
        procs[1] = subprocess.Popen([forkline, "worker"], cwd=tmp, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 15
        while len(descendants(procs[1].pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # the supervisor forks its consumers
        time.sleep(1)
        consumer = descendants(procs[1].pid)[-1]
        spy = record(consumer, OUT / f"{label}-consumer-drain.svg", 4)
        spy.wait(60)
        print(f"wrote {OUT}/{label}-web-post.svg and {label}-consumer-drain.svg")
    finally:
        for proc in reversed(procs):
            stop_pid(proc, signal.SIGTERM, timeout=30)


if __name__ == "__main__":
    main()
