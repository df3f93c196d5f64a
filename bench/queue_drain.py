"""forkline's backlog drain measured as ../shared/bench/peer-python measures Huey, RQ, Celery, Dramatiq, arq.

    .venv/bin/python bench/queue_drain.py [--jobs 20000] [--processes 2] [--threads 5]
        [--logging stock|quiet] [--repeat 1] [--out bench/results/queue-drain-DATE.jsonl]

Per run, the peer harness's method: a fresh Redis (../redis.sh, no persistence); N no-op
jobs enqueued from one process with forkline's own one-job call (`submit_job` on the
Redis JobQueue port, as a web worker calls it: record and message in one script, one
call after another); then the stock worker command (`forkline worker`; CONSUMER_PROCESSES
and WORKER_CONCURRENCY from the options; stock logging is LOG_LEVEL=info, one line per
job; quiet is LOG_LEVEL=warning) while the queue's `completed` counter is polled every
20 ms. drain_jobs_per_s counts the jobs completed between the first poll that sees the
counter > 0 and the poll that sees N; worker_cpu_s and the worker tree's peak RSS/PSS
run from launch to N; Redis commands per job come from INFO commandstats (the poller's
own HGETs left out), for the enqueue and for the drain. One JSON line per run.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from adapters.redis import keys  # noqa: E402
from adapters.settings import Settings  # noqa: E402
from adapters.wiring import build_ports  # noqa: E402
from bench.measuring import MemorySampler, cpu_seconds, throwaway_redis  # noqa: E402
from functions import routes  # noqa: E402
from harness.processes import stop_pid  # noqa: E402
from local.commands.bench import descendants  # noqa: E402


def commands(client: redis.Redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in client.info("commandstats").items()}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def run(jobs: int, processes: int, threads: int, logging: str) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="queue-drain-"))
    with throwaway_redis(tmp) as port:
        return drain(jobs, processes, threads, logging, tmp, port)


def drain(jobs: int, processes: int, threads: int, logging: str, tmp: Path, port: int) -> dict:
    url = f"redis://127.0.0.1:{port}/0"
    env = dict(os.environ)
    worker = None
    try:
        client = redis.Redis(port=port)
        ports = build_ports(Settings(redis_url=url, _env_file=None))
        before = commands(client)
        start = time.monotonic()
        for _ in range(jobs):
            routes.submit_job({"type": "noop"}, ports.jobs, lambda: uuid.uuid4().hex, ports.clock(), 4)
        enqueue_s = time.monotonic() - start
        enqueued = delta(commands(client), before)
        worker_env = {**env, "REDIS_URL": url, "CONSUMER_PROCESSES": str(processes), "WORKER_CONCURRENCY": str(threads),
                      "LOG_LEVEL": "info" if logging == "stock" else "warning", "LOG_DIR": str(tmp / "logs"),
                      "DATA_DIR": str(tmp / "data")}
        worker_env.pop("CONSUMER_NICE", None)
        stats_key = keys.queue_keys("default").stats
        before, polls = commands(client), 0
        launched = time.monotonic()
        worker = subprocess.Popen([str(ROOT / ".venv" / "bin" / "forkline"), "worker"], cwd=tmp, env=worker_env,
                                  stdout=open(tmp / "worker.out", "wb"), stderr=subprocess.STDOUT)
        sampler = MemorySampler([worker.pid], interval=0.25)
        sampler.start()
        first: tuple[float, int] | None = None
        while True:
            done = int(client.hget(stats_key, "completed") or 0)
            polls += 1
            now = time.monotonic()
            if first is None and done > 0:
                first = (now, done)
            if done >= jobs:
                break
            if now - launched > 300 or worker.poll() is not None:
                raise RuntimeError(f"{done} of {jobs} jobs completed")
            time.sleep(0.02)
        worker_cpu = cpu_seconds(descendants(worker.pid))
        sampler.done.set()
        drained = delta(commands(client), before)
        drained["hget"] = drained.get("hget", 0) - polls
        drained["info"] = drained.get("info", 0) - 1
        assert first is not None
        return {"system": "forkline", "mode": f"forkline-p{processes}t{threads}", "logging": logging, "jobs": jobs,
                "enqueue_jobs_per_s": round(jobs / enqueue_s, 1),
                "drain_jobs_per_s": round((jobs - first[1]) / (now - first[0]), 1) if now > first[0] else None,
                "startup_s": round(first[0] - launched, 2), "worker_cpu_s": round(worker_cpu, 2),
                "worker_peak_rss_mb": round(sampler.peak[0], 1), "worker_peak_pss_mb": round(sampler.peak[1], 1),
                "redis_cmds_per_enqueue": round(sum(enqueued.values()) / jobs, 2),
                "redis_calls_per_enqueue": {k: round(v / jobs, 2) for k, v in enqueued.items()},
                "redis_cmds_per_job_drain": round(sum(v for v in drained.values() if v > 0) / jobs, 2),
                "redis_calls_per_job_drain": {k: round(v / jobs, 3) for k, v in drained.items() if v > 0},
                "loadavg": Path("/proc/loadavg").read_text().split()[:3]}
    finally:
        if worker is not None:
            stop_pid(worker, signal.SIGTERM, timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=5)
    parser.add_argument("--logging", choices=("stock", "quiet"), default="stock")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    for _ in range(args.repeat):
        line = json.dumps(run(args.jobs, args.processes, args.threads, args.logging))
        print(line, flush=True)
        if args.out:
            with args.out.open("a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
