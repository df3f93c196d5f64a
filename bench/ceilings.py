"""How far POST /jobs can go on this machine, and where its time goes: the ceilings side by side in one
sitting, with the web workers' CPU per request (a benchmark, not a test; the first step of issue 41).

    .venv/bin/python bench/ceilings.py [--rounds 3] [--duration 8]

Per round, in turn (the order reversed in even rounds; the redis-benchmark run below is one of the
turns), `forkline serve` (web workers only: nothing consumes, so every job stays in Redis) on a
throwaway Redis, driven by the shared harness's POST /jobs wrk run (http.sh: 64 connections; a 2 s
warm-up run first, unmeasured):
- `ingest`: forkline as shipped (validation, the submit script, the 202);
- `no-op store`: the same app (middleware, validation, ids, metrics, the answer) whose job queue keeps
  nothing: what HTTP and validation cost without Redis;
- `bare falcon`: a Falcon app on the same bjoern workers answering a fixed 202: the server's floor.
CPU per request: the web workers' utime + stime (/proc/<pid>/stat) over the measured run, divided by the
requests wrk counted. Then `redis-benchmark` (64 connections) runs the submit script alone (EVALSHA, a
new job id each call): Redis's own ceiling for it. Prints a JSON line per measurement, then medians.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.measuring import alternating, post_jobs_with_cpu, rounds_and_duration  # noqa: E402
from harness.processes import Forkline, RedisProcess, children_of  # noqa: E402

SETUPS = {"ingest": "adapters.wiring:build_app", "no-op store": "bench.ceilings:noop_store_app",
          "bare falcon": "bench.ceilings:bare_app"}
ALONE = "submit script alone (redis-benchmark)"


def bare_app(settings: Any) -> Any:
    """A Falcon app answering every POST /jobs with a fixed 202: the HTTP server's floor."""
    import falcon

    class Accept:
        def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.status = 202
            resp.media = {"jobId": "default.0", "status": "queued"}

    class Health:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.media = {"status": "ok"}

    app = falcon.App()
    app.add_route("/jobs", Accept())
    app.add_route("/health", Health())  # what the harness waits for
    return app


class KeepNothing:
    """A JobQueue whose submit stores nothing (what forkline's own work costs without Redis)."""

    def submit(self, job: Any, once: Any = None) -> None:
        return None


def noop_store_app(settings: Any) -> Any:
    from adapters.http.app import AppDeps, create_app
    from adapters.metrics import PrometheusMetrics
    from adapters.tracing import tracing
    from adapters.wiring import build_ports

    ports = build_ports(settings)  # for the routes this run does not call
    jobs: Any = KeepNothing()
    return create_app(AppDeps(jobs=jobs, dlq=ports.dlq, probe=ports.probe, max_attempts=settings.max_attempts,
                              metrics=PrometheusMetrics(), tracer=tracing))


def measure(name: str, duration: int, tmp: Path) -> dict:
    redis = RedisProcess(tmp / "redis", persist=False)
    redis.start()
    api = Forkline("serve", tmp, {"REDIS_URL": redis.url, "APP_FACTORY": SETUPS[name]})
    try:
        api.start(timeout=30)
        line = post_jobs_with_cpu(api.port, duration, lambda: children_of(api.pid))
        return {"setup": name, "rps": line["rps"], "p50_ms": line["p50_ms"], "p99_ms": line["p99_ms"],
                "cpu_us_per_request": line["cpu_us_per_request"], "non2xx": line["non2xx"],
                "errors": line["errors"], "workers": line["processes"]}
    finally:
        api.stop()
        redis.stop()


def submit_script_alone(tmp: Path) -> dict:
    """redis-benchmark running the submit script (no idempotency key), a new job id per call."""
    from adapters.redis.scripts import SUBMIT

    redis = RedisProcess(tmp / "redis-alone", persist=False)
    redis.start()
    try:
        client = redis.client()
        sha = client.script_load(SUBMIT.source)
        tag = "{forkline:default}"
        message = "default.__rand_int__\n" + "x" * 200  # about a framed message's size
        args = [f"{tag}:job:default.__rand_int__", f"{tag}:queue", f"{tag}:queue:priorities", message, "0", "",
                "86400", "", "", "id", "default.__rand_int__", "type", "message", "payload",
                '{"message":"hello","shouldFail":false}', "state", "queued", "maxAttempts", "4", "createdAt",
                "1.5", "updatedAt", "1.5"]
        out = subprocess.run(["redis-benchmark", "-p", str(redis.port), "-c", "64", "-n", "200000", "-r",
                              "100000000", "--csv", "EVALSHA", sha, "3", *args],
                             capture_output=True, text=True, timeout=300, check=True).stdout
        # The row's first field is the command with its arguments (commas, a newline): read from its end.
        rps = out.strip().splitlines()[-1].rsplit(",", 7)[1]
        return {"setup": ALONE, "rps": float(rps.strip('"'))}
    finally:
        redis.stop()


def main() -> int:
    args = rounds_and_duration(__doc__.splitlines()[0])
    results: list[dict] = []
    for n, name in alternating([*SETUPS, ALONE], args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            found = submit_script_alone(Path(tmp)) if name == ALONE else measure(name, args.duration, Path(tmp))
        result = {"round": n, "load": os.getloadavg()[0], **found}
        print(json.dumps(result), flush=True)
        results.append(result)
    print(f"\nmedians of {args.rounds} rounds ({args.duration} s, 64 connections):")
    for name in [*SETUPS, ALONE]:
        mine = [r for r in results if r["setup"] == name]
        cpu = [r["cpu_us_per_request"] for r in mine if "cpu_us_per_request" in r]
        extra = f"  p99 {statistics.median(r['p99_ms'] for r in mine):.2f} ms  CPU {statistics.median(cpu):.0f} " \
                f"us/request" if cpu else ""
        print(f"  {name:40} {statistics.median(r['rps'] for r in mine):>8.0f} req/s{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
