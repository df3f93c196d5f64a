"""How many jobs one Redis primary carries: Redis commands and server time per job, from
INFO commandstats, against what redis-benchmark says this machine's Redis can do.

    .venv/bin/python bench/redis_capacity.py [jobs]        # default 20,000

Starts a Redis (AOF everysec, as `forkline run`'s), `forkline serve` (2 web workers) and, once every
job is accepted, `forkline worker` (defaults); CONFIG RESETSTAT before each phase. Twice: once for the
server's times (commandstats) and redis-benchmark's PING rate on the same Redis, once under MONITOR
for what each job sends and what runs inside scripts. Prints one JSON line. Every process it starts
is stopped by its pid.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from harness.processes import Forkline, RedisProcess, stop_pid, wait_until  # noqa: E402
from local.commands.bench import post_jobs  # noqa: E402

STATS_KEY = "{forkline:default}:stats"


def commandstats(client) -> dict[str, dict[str, float]]:
    return {name.removeprefix("cmdstat_"): value for name, value in client.info("commandstats").items()}


MONITORED = re.compile(r'^[0-9.]+ \[\d+ ([^\]]+)\] "([^"]+)"(.*)$')
OURS = ("info", "config|resetstat", "config", "monitor")  # this script's own commands


class Monitor:
    """`redis-cli monitor` into a file while a phase runs: which commands arrive from clients (round
    trips) and which run inside scripts (its lines say `lua`)."""

    def __init__(self, port: int, path: Path):
        self.path = path
        self.out = open(path, "w")
        self.proc = subprocess.Popen(["redis-cli", "-p", str(port), "monitor"], stdout=self.out)
        time.sleep(0.3)

    def stop(self) -> tuple[dict[str, int], dict[str, int]]:
        stop_pid(self.proc, timeout=10)
        self.out.close()
        outside: dict[str, int] = {}
        inside: dict[str, int] = {}
        for line in self.path.read_text(errors="replace").splitlines():
            found = MONITORED.match(line)
            if not found or found[2].lower() in OURS or (found[2].lower() == "hget" and STATS_KEY in found[3]):
                continue
            counts = inside if found[1] == "lua" else outside
            counts[found[2].lower()] = counts.get(found[2].lower(), 0) + 1
        return outside, inside


def per_job(outside: dict[str, int], inside: dict[str, int], stats: dict[str, dict[str, float]], jobs: int) -> dict:
    """Round trips (commands from clients) and commands run inside scripts, per job; the server time
    per job: every command a client sent, at its mean time (a script's includes its commands)."""
    usec = sum(count * stats[name]["usec_per_call"] for name, count in outside.items() if name in stats)
    return {"round_trips": round(sum(outside.values()) / jobs, 3),
            "sent": {n: round(c / jobs, 3) for n, c in sorted(outside.items()) if c / jobs >= 0.001},
            "in_scripts": {n: round(c / jobs, 3) for n, c in sorted(inside.items()) if c / jobs >= 0.001},
            "server_usec": round(usec / jobs, 2)}


def benchmark(port: int, *command: str) -> float:
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-n", "200000", "-c", "50", "-q", *command],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    # "PING_MBULK: 123456.79 requests per second, p50=..." (the last figure printed)
    return float(re.findall(r"([0-9.]+) requests per second", out)[-1])


def run_once(jobs: int, monitored: bool) -> dict:
    """Enqueue `jobs` through the API, then drain them; per phase, commandstats (and with `monitored`,
    what MONITOR saw). Also redis-benchmark's figures on the same Redis."""
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        redis_server = RedisProcess(tmp / "redis")
        redis_server.start()
        client = redis_server.client()
        env = {"REDIS_URL": redis_server.url, "WEB_CONCURRENCY": "2", "LOG_LEVEL": "warning", "METRICS_PORT": "0"}
        api = Forkline("serve", tmp, env)
        # the worker's own defaults, not the test helper's single un-niced consumer
        worker = Forkline("worker", tmp, {**env, "CONSUMER_PROCESSES": str(os.cpu_count() or 1), "CONSUMER_NICE": "10"})
        found: dict = {}
        try:
            api.start()
            client.config_resetstat()
            monitor = Monitor(redis_server.port, tmp / "enqueue.monitor") if monitored else None
            found["jobs"] = accepted = post_jobs(api.port, jobs, {"type": "noop"})
            found["enqueue"] = (monitor.stop() if monitor else None, commandstats(client))
            client.config_resetstat()
            monitor = Monitor(redis_server.port, tmp / "drain.monitor") if monitored else None
            started = time.monotonic()
            worker.start(wait_http=False)
            wait_until(lambda: int(client.hget(STATS_KEY, "completed") or 0) >= accepted, 600, 0.05, "the drain")
            found["drain_seconds"] = time.monotonic() - started
            found["completion"] = (monitor.stop() if monitor else None, commandstats(client))
            if not monitored:
                found["ping"] = benchmark(redis_server.port, "-t", "ping_mbulk")
        finally:
            worker.stop()
            api.stop()
            client.close()
            redis_server.stop()
    return found


def main(jobs: int) -> dict:
    """Times from a plain run; what each job sends from a second run under MONITOR (which slows Redis)."""
    plain, seen = run_once(jobs, monitored=False), run_once(jobs, monitored=True)
    phases = {}
    for phase in ("enqueue", "completion"):
        outside, inside = seen[phase][0]
        phases[phase] = per_job(outside, inside, plain[phase][1], plain["jobs"])
    # One Redis runs commands on one thread: a job costs its round trips at the PING rate (reading,
    # dispatching and answering a command) plus the time its commands and scripts run.
    round_trip_usec = 1e6 / plain["ping"]
    job_usec = sum(p["round_trips"] * round_trip_usec + p["server_usec"] for p in phases.values())
    return {"jobs": plain["jobs"], **phases, "drain_jobs_per_s": round(plain["jobs"] / plain["drain_seconds"]),
            "redis_benchmark_ping_rps": plain["ping"], "redis_usec_per_job": round(job_usec, 2),
            "ceiling_jobs_per_s": round(1e6 / job_usec)}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)))
