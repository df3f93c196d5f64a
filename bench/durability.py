"""The POST /jobs cost of durability, side by side in one sitting: Redis's AOF fsync policy
(REDIS_APPENDFSYNC: everysec, the template's, against always) and replica-acknowledged submits
(REDIS_REPLICA_ACKS: 0 against 1, a primary with one replica on loopback).

    .venv/bin/python bench/durability.py [--rounds 3] [--duration 8]

Per round, the four set-ups in turn (their order reversed in even rounds): the Redis processes (AOF on,
as forkline's embedded Redis runs; data on this machine's disk), `forkline serve` with its defaults
against them, then the shared harness's POST /jobs wrk run (http.sh: 64 connections, 2 s warm-up).
Prints a JSON line per set-up and round, then the medians and the ratios to each pair's baseline.
Every process is stopped by its pid.
"""

import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.measuring import alternating, post_jobs_run, rounds_and_duration  # noqa: E402
from harness.processes import Forkline, RedisProcess, wait_until  # noqa: E402

SETUPS = {  # name: (appendfsync, replica, REDIS_REPLICA_ACKS)
    "everysec": ("everysec", False, 0),
    "always": ("always", False, 0),
    "replica, acks 0": ("everysec", True, 0),
    "replica, acks 1": ("everysec", True, 1),
}
BASELINES = {"always": "everysec", "replica, acks 1": "replica, acks 0"}


def measure(name: str, duration: int, tmp: Path) -> dict:
    fsync, with_replica, acks = SETUPS[name]
    option = ("--appendfsync", fsync)  # after redis_command's own, so it wins
    primary = RedisProcess(tmp / "primary", extra=option)
    primary.start()
    replica = None
    api = Forkline("serve", tmp, {"REDIS_URL": primary.url, "REDIS_REPLICA_ACKS": str(acks), "LOG_LEVEL": "warning"})
    try:
        if with_replica:
            replica = RedisProcess(tmp / "replica", extra=("--replicaof", "127.0.0.1", str(primary.port), *option))
            replica.start()
            wait_until(lambda: replica.client().info("replication").get("master_link_status") == "up", 15, 0.1,
                       "the replica to sync")
        api.start()
        line = post_jobs_run(api.port, duration)
        return {"setup": name, "rps": line["rps"], "p50_ms": line["p50_ms"], "p99_ms": line["p99_ms"],
                "non2xx": line["non2xx"], "errors": line["errors"]}
    finally:
        api.stop()
        if replica is not None:
            replica.stop()
        primary.stop()


def main() -> int:
    args = rounds_and_duration(__doc__.splitlines()[0])
    results: list[dict] = []
    for n, name in alternating(list(SETUPS), args.rounds):
        with tempfile.TemporaryDirectory(dir=ROOT / ".forkline" if (ROOT / ".forkline").is_dir() else None) as tmp:
            result = {"round": n, **measure(name, args.duration, Path(tmp))}
        print(json.dumps(result), flush=True)
        results.append(result)
    medians = {name: {key: statistics.median(r[key] for r in results if r["setup"] == name)
                      for key in ("rps", "p50_ms", "p99_ms")} for name in SETUPS}
    print(f"\nPOST /jobs, medians of {args.rounds} rounds ({args.duration} s, 64 connections):")
    for name, figures in medians.items():
        base = BASELINES.get(name)
        ratio = f"  ({figures['rps'] / medians[base]['rps']:.2f}x the req/s of {base})" if base else ""
        print(f"  {name:16} {figures['rps']:>8.0f} req/s  p50 {figures['p50_ms']:.2f} ms  "
              f"p99 {figures['p99_ms']:.2f} ms{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
