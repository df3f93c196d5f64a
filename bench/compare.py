"""forkline beside the Node template (Express cluster + BullMQ), measured the same way, in one sitting.

    .venv/bin/python bench/compare.py [--rounds 3] [--jobs 20000] [--out bench/results/compare-DATE.jsonl]

Per round and system (alternating, Node first in odd rounds): a throwaway Redis
(../shared/bench/redis.sh, no persistence), the API server and the queue worker
started with their default settings (forkline: `forkline run`, LOG_LEVEL=info, job
logs and metrics on; Node: `node src/server.js` + `node src/queue/worker.js`, as
`npm start` and `npm run worker`), then the shared harness's wrk runs (http.sh:
GET /health, POST /jobs, 64 connections, 2 s warm-up, DURATION s), then a backlog
drain: JOBS jobs POSTed while nothing consumes them (Node: its worker stopped;
forkline: the queue paused), then the worker started (the queue resumed) and timed
from the first completion to the last. Memory is the RSS and PSS totals of the
process trees, Redis left out, sampled every 0.5 s (idle: before the load; peak:
the highest total). CPU per request: the web processes' utime + stime (/proc) over the
measured POST /jobs run divided by the requests wrk counted (forkline: the processes titled
`forkline: web`; Node: server.js and its cluster workers); CPU per job: the consumers' over the
drain from its first completion, divided by the jobs completed since (forkline: `forkline:
consumer`; Node: worker.js). Before each round a fixed CPU calibration (bench/measuring.py)
is printed beside the load average; a round whose calibration is more than 15 % below the
sitting's best is marked noisy and left out of the medians (listed above the table). Prints a
JSON line per system and round, then the table of medians and ratios. Node's dependencies are
installed into .bench/seed-node (a copy; ../shared stays read-only). With `--before COMMIT`,
forkline at that commit (its tree from git, on this checkout's environment) is measured too, as
a third system in the rotation. Every process is stopped by its pid.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.measuring import (  # noqa: E402
    BENCH,
    MemorySampler,
    calibration,
    cpu_seconds,
    noisy_rounds,
    post_jobs_with_cpu,
    throwaway_redis,
    titled,
)
from harness.processes import stop_pid  # noqa: E402
from local.commands.bench import descendants, get, post_jobs, wait_idle  # noqa: E402
from local.runtime.redis_server import free_port  # noqa: E402

SEED_COPY = ROOT / ".bench" / "seed-node"


def seed_node() -> Path | None:
    """A copy of the Node template with its dependencies installed, or None without node/npm."""
    if not (shutil.which("node") and shutil.which("npm") and (BENCH / "seed-node").is_dir()):
        return None
    lock = (BENCH / "seed-node" / "package-lock.json").read_bytes()
    if not (SEED_COPY / "node_modules").is_dir() or (SEED_COPY / "package-lock.json").read_bytes() != lock:
        shutil.rmtree(SEED_COPY, ignore_errors=True)
        shutil.copytree(BENCH / "seed-node", SEED_COPY)
        for path in [SEED_COPY, *SEED_COPY.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SEED_COPY, check=True, timeout=600,
                       stdout=subprocess.DEVNULL)
    return SEED_COPY


def wrk_runs(port: int, duration: int, web: Callable[[], list[int]]) -> dict[str, dict]:
    """GET /health, then POST /jobs (each after a 2 s warm-up), with the web processes' CPU per POST."""
    env = {**os.environ, "SCENARIOS": "health", "WARMUP_S": "2"}
    out = subprocess.run([str(BENCH / "http.sh"), f"http://127.0.0.1:{port}", str(duration), "64"], env=env,
                         capture_output=True, text=True, timeout=4 * duration + 120, check=True)
    found = {line["scenario"]: line for line in map(json.loads, out.stdout.splitlines()) if "scenario" in line}
    line = post_jobs_with_cpu(port, duration, web)
    found[line["scenario"]] = line
    return found


def post(port: int, path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", path)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {path} answered {response.status}")
    finally:
        conn.close()


def completed(port: int) -> int:
    return int(get(port, "/queue/stats")["completed"])


def measure(system: str, seed: Path | None, jobs: int, duration: int, tmp: Path,
            settings: dict[str, str] | None = None) -> dict:
    with throwaway_redis(tmp) as redis_port:
        return measure_stack(system, seed, jobs, duration, tmp, redis_port, settings)


def measure_stack(system: str, seed: Path | None, jobs: int, duration: int, tmp: Path, redis_port: int,
                  settings: dict[str, str] | None) -> dict:
    port = free_port()
    env = dict(os.environ)
    if system == "node":
        assert seed is not None
        app_env = {**env, "NODE_ENV": "production", "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "info",
                   "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_port), "LOG_DIR": str(tmp / "logs")}
        server, worker, cwd = ["node", "src/server.js"], ["node", "src/queue/worker.js"], seed
    else:
        forkline = str(ROOT / ".venv" / "bin" / "forkline")
        app_env = {**env, "HOST": "127.0.0.1", "PORT": str(port), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                   "LOG_DIR": str(tmp / "logs"), "DATA_DIR": str(tmp / "data")}
        for name in ("LOG_LEVEL", "WEB_CONCURRENCY", "CONSUMER_PROCESSES", "CONSUMER_NICE", "WORKER_CONCURRENCY"):
            app_env.pop(name, None)
        app_env.update(settings or {})
        server, worker, cwd = [forkline, "run"], [], tmp
        if system == "before":  # an earlier commit's tree (--before), on this checkout's environment
            server = [sys.executable, "-m", "local.commands.cli", "run"]
            app_env["PYTHONPATH"] = str(before_tree())
    out = open(tmp / f"{system}.out", "ab")
    procs = [subprocess.Popen(command, cwd=cwd, env=app_env, stdout=out, stderr=out) for command in (server, worker)
             if command]
    sampler = MemorySampler([p.pid for p in procs])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                completed(port)
                break
            except (OSError, ValueError):
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    raise RuntimeError(f"{system} did not start") from None
                time.sleep(0.1)
        time.sleep(3)  # every web worker and the consumer up
        sampler.mark_idle()
        sampler.start()
        result: dict = {"system": system, "loadavg": Path("/proc/loadavg").read_text().split()[:3]}
        server_pid = procs[0].pid
        if system == "node":
            web = lambda: descendants(server_pid)  # noqa: E731  the cluster's primary and workers
            consumers = lambda: descendants(procs[1].pid)  # noqa: E731  worker.js (started again below)
        else:
            web = lambda: titled(descendants(server_pid), "forkline: web")  # noqa: E731
            consumers = lambda: titled(descendants(server_pid), "forkline: consumer")  # noqa: E731
        result.update(wrk_runs(port, duration, web))
        wait_idle(port, 600)
        if system == "node":
            stop_pid(procs[1], signal.SIGTERM, timeout=30)
            sampler.pids = [procs[0].pid]
        else:
            post(port, "/queues/default/pause")
        body = {"message": "Hello", "shouldFail": False} if system == "node" else {"type": "noop"}
        posted, before = post_jobs(port, jobs, body), completed(port)
        if system == "node":
            procs[1] = subprocess.Popen(worker, cwd=cwd, env=app_env, stdout=out, stderr=out)
            sampler.pids = [p.pid for p in procs]
        else:
            post(port, "/queues/default/resume")
        start, first, cpu_from, done_at_first = time.monotonic(), None, 0.0, 0
        while (done := completed(port) - before) < posted:
            if time.monotonic() - start > 600:
                raise RuntimeError(f"{system}: {done} of {posted} jobs completed in 600 s")
            if first is None and done > 0:
                first = time.monotonic()  # the worker's start-up is not drain time
                cpu_from, done_at_first = cpu_seconds(consumers()), done
            time.sleep(0.02)
        took = time.monotonic() - (first or start)
        per_job = (cpu_seconds(consumers()) - cpu_from) / max(1, posted - done_at_first) * 1e6
        result["drain"] = {"jobs": posted, "seconds": round(took, 2), "jobs_per_s": round(posted / took, 1),
                           "cpu_us_per_job": round(per_job, 1)}
        sampler.done.set()
        result["memory_mb"] = {"idle_rss": round(sampler.idle[0], 1), "idle_pss": round(sampler.idle[1], 1),
                               "peak_rss": round(sampler.peak[0], 1), "peak_pss": round(sampler.peak[1], 1)}
        return result
    finally:
        sampler.done.set()
        for proc in reversed(procs):
            stop_pid(proc, signal.SIGTERM, timeout=30)


ROWS = [("GET /health rps", lambda r: r["GET /health"]["rps"], True),
        ("GET /health p99 ms", lambda r: r["GET /health"]["p99_ms"], False),
        ("POST /jobs rps", lambda r: r["POST /jobs"]["rps"], True),
        ("POST /jobs p99 ms", lambda r: r["POST /jobs"]["p99_ms"], False),
        ("web CPU per POST /jobs µs", lambda r: r["POST /jobs"]["cpu_us_per_request"], False),
        ("backlog drain jobs/s", lambda r: r["drain"]["jobs_per_s"], True),
        ("consumer CPU per job µs", lambda r: r["drain"]["cpu_us_per_job"], False),
        ("memory idle RSS MB", lambda r: r["memory_mb"]["idle_rss"], False),
        ("memory idle PSS MB", lambda r: r["memory_mb"]["idle_pss"], False),
        ("memory peak RSS MB", lambda r: r["memory_mb"]["peak_rss"], False),
        ("memory peak PSS MB", lambda r: r["memory_mb"]["peak_pss"], False)]


def table(results: list[dict]) -> str:
    """Medians over the rounds not marked noisy (every round when all are)."""
    noisy = {r["round"] for r in results if r.get("noisy")}
    kept = [r for r in results if r["round"] not in noisy] or results
    notes = [f"round {r['round']}: calibration {r['calibration']} M steps/s, load {r['loadavg'][0]}"
             + (" (noisy: left out of the medians)" if r["round"] in noisy else "")
             for r in results if r["system"] == results[0]["system"]]
    return "\n".join(notes) + "\n" + medians_table(kept)


def medians_table(results: list[dict]) -> str:
    """A column of medians per system, then forkline's ratio to each other system."""
    systems = [s for s in ("forkline", "node", "before") if any(r["system"] == s for r in results)]
    others = [s for s in systems if s != "forkline"] if "forkline" in systems else []
    lines = ["| figure (median of runs) | " + " | ".join(systems) + "".join(f" | forkline / {o}" for o in others)
             + " |", "| --- " * (len(systems) + 1 + len(others)) + "|"]
    for name, pick, higher_better in ROWS:
        medians = dict((s, statistics.median(pick(r) for r in results if r["system"] == s)) for s in systems)
        cells = [f"{medians[s]:,.1f}" for s in systems]
        for other in others:
            ratio = medians["forkline"] / medians[other] if medians[other] else float("nan")
            cells.append(f"{ratio:.2f}×" + ("" if higher_better else " (lower is better)"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


BEFORE: dict[str, str] = {}  # the commit --before names


def before_tree() -> Path:
    """The tree of the --before commit, from this repository's history (extracted once into .bench/)."""
    commit = BEFORE["commit"]
    tree = ROOT / ".bench" / f"before-{commit}"
    if not (tree / "local").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit], capture_output=True,
                                 check=True, timeout=60).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True, timeout=60)
    return tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--systems", default="forkline,node")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--before", metavar="COMMIT",
                        help="also measure forkline at an earlier commit (system `before`), in the rotation")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a forkline setting for this sitting (e.g. WEB_CONCURRENCY=1); default: none")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("compare.py needs wrk (make bench-packages)", file=sys.stderr)
        return 1
    systems = args.systems.split(",")
    if args.before:
        BEFORE["commit"] = args.before
        before_tree()
        systems.append("before")
    settings = dict(item.split("=", 1) for item in args.set)
    seed = seed_node() if "node" in systems else None
    if "node" in systems and seed is None:
        print("node/npm or ../shared/bench/seed-node not found: measuring forkline alone", file=sys.stderr)
        systems.remove("node")
    results = []
    for round_ in range(args.rounds):
        calibrated = calibration()
        print(f"round {round_ + 1}: calibration {calibrated} M steps/s, load {os.getloadavg()[0]:.2f}", flush=True)
        for system in systems if round_ % 2 else list(reversed(systems)):
            with tempfile.TemporaryDirectory(prefix=f"compare-{system}-") as tmp:
                result = measure(system, seed, args.jobs, args.duration, Path(tmp), settings)
            result["round"], result["calibration"] = round_ + 1, calibrated
            if system == "forkline" and settings:
                result["settings"] = settings
            print(json.dumps(result), flush=True)
            results.append(result)
            if args.out:
                with args.out.open("a") as f:
                    f.write(json.dumps(result) + "\n")
    calibrations = {r["round"]: r["calibration"] for r in results}
    for result in results:
        result["noisy"] = result["round"] in noisy_rounds(calibrations)
    if args.out:
        with args.out.open("a") as f:
            f.write(json.dumps({"noisy_rounds": sorted(noisy_rounds(calibrations))}) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
