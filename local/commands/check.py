"""`forkline check`: prove on a running deployment that nothing accepted is lost.

Submits a burst of probe jobs (type `check`, tagged with this run's id and a sequence number, each with
its own Idempotency-Key, so a post retried after a refusal or a reset makes no second job), waits for
every accepted one to finish (bounded by --timeout), and reports accepted, completed, dead, missing
(not finished in time, or gone), re-run (attempts > 1), enqueue-to-completion percentiles and
throughput. Exit status 1 when any accepted job is missing or dead, 0 otherwise, 2 when it cannot run.

--chaos (a `forkline run` stack on this machine, found from the port of FORKLINE_URL): halfway through
the burst it SIGKILLs one consumer and one web worker, and with --chaos=redis the embedded Redis too;
the report lists what it killed and when. Probe records expire 10 minutes after they finish
(functions/jobs.py CHECK_RETENTION); --cleanup removes the completed ones at once.
"""

import argparse
import json
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from local.commands.api_client import ApiClient, ApiError
from local.commands.local_stack import LocalStack, find_stack

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
POLL_SECONDS = 0.5


def add_arguments(sub: Any) -> None:
    check = sub.add_parser("check", help="prove on a running deployment that nothing accepted is lost",
                           description=__doc__.split("\n\n")[0] if __doc__ else None)
    check.add_argument("--jobs", type=int, default=500, help="probe jobs in the burst (500)")
    check.add_argument("--concurrency", type=int, default=8, help="parallel submitters (8)")
    check.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for them to finish (120)")
    check.add_argument("--chaos", nargs="?", const="workers", choices=("workers", "redis"),
                       help="SIGKILL a consumer and a web worker mid-burst (=redis: the embedded Redis too); "
                            "a `forkline run` stack on this machine only")
    check.add_argument("--cleanup", action="store_true", help="remove the completed probes' records at the end")
    check.add_argument("--json", action="store_true", help="JSON for scripts")


@dataclass
class Burst:
    run: str
    accepted: dict[int, str] = field(default_factory=dict)  # seq -> job id
    refused: int = 0  # answers other than 202/200, and resets, each retried with the same key
    kills: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def submit(client: ApiClient, burst: Burst, seq: int, deadline: float) -> None:
    body = {"type": "check", "run": burst.run, "seq": seq}
    while time.monotonic() < deadline:
        try:
            answer = client.call("POST", "/jobs", body, headers={"Idempotency-Key": f"check:{burst.run}:{seq}"})
        except ApiError as exc:
            if exc.status in (400, 401, 403, 404, 413, 415, 422):
                raise  # the request itself is refused: retrying will not help
            with burst.lock:
                burst.refused += 1
            time.sleep(0.2)
            continue
        with burst.lock:
            burst.accepted[seq] = answer["jobId"]
        return


def chaos(stack: LocalStack, mode: str, burst: Burst) -> None:
    roles = ["consumer", "web"] + (["redis"] if mode == "redis" else [])
    for role in roles:
        pid = stack.kill(role)
        burst.kills.append({"role": role, "pid": pid, "at": round(time.monotonic() - burst.started, 2)})


def wait_for(client: ApiClient, burst: Burst, deadline: float) -> dict[str, dict[str, Any] | None]:
    """seq's job id -> its last record (None: 404), polled until each is completed or dead, or the deadline."""
    records: dict[str, dict[str, Any] | None] = {}
    waiting = set(burst.accepted.values())
    while waiting and time.monotonic() < deadline:
        for job_id in sorted(waiting):
            try:
                records[job_id] = client.call("GET", f"/jobs/{job_id}")
            except ApiError as exc:
                if exc.status == 404:
                    records[job_id] = None
                continue  # an outage: asked again next round
            if records[job_id]["state"] in ("completed", "dead"):  # type: ignore[index]
                waiting.discard(job_id)
        if waiting:
            time.sleep(POLL_SECONDS)
    return records


def report_of(burst: Burst, records: dict[str, dict[str, Any] | None], jobs: int) -> dict[str, Any]:
    finished = [r for r in records.values() if r and r["state"] in ("completed", "dead")]
    completed = [r for r in finished if r["state"] == "completed"]
    latencies = [r["finishedAt"] - r["createdAt"] for r in completed]
    span = (max(r["finishedAt"] for r in completed) - min(r["createdAt"] for r in completed)) if completed else 0
    missing = [job_id for job_id in burst.accepted.values()
               if not records.get(job_id) or records[job_id]["state"] not in ("completed", "dead")]  # type: ignore[index]
    return {
        "run": burst.run, "submitted": jobs, "accepted": len(burst.accepted), "notAccepted": jobs - len(burst.accepted),
        "completed": len(completed), "dead": len(finished) - len(completed), "missing": len(missing),
        "missingIds": missing[:20], "rerun": sum(1 for r in finished if r["attempts"] > 1),
        "refusedAndRetried": burst.refused, "kills": burst.kills,
        "latencyMs": {name: round(value * 1000, 1) if value is not None else None
                      for name, value in (("p50", percentile(latencies, 50)), ("p95", percentile(latencies, 95)),
                                          ("p99", percentile(latencies, 99)))},
        "jobsPerSecond": round(len(completed) / span, 1) if span > 0 else None,
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"forkline check {report['run']}: {report['submitted']} probe jobs")
    for kill in report["kills"]:
        print(f"  killed {kill['role']} (pid {kill['pid']}) at {kill['at']} s" if kill["pid"]
              else f"  no {kill['role']} to kill")
    print(f"  accepted   {report['accepted']:>7}   (refusals and resets retried with the same key: "
          f"{report['refusedAndRetried']})")
    for name in ("completed", "dead", "missing", "rerun"):
        print(f"  {name:<10} {report[name]:>7}")
    latency = report["latencyMs"]
    print(f"  enqueue to completion p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms; "
          f"{report['jobsPerSecond']} jobs/s")
    if "cleanedUp" in report:
        print(f"  removed the records of {report['cleanedUp']} completed probes")
    if report["missingIds"]:
        print("  missing: " + ", ".join(report["missingIds"]))
    print("  PASS: every accepted job finished, none dead" if report["missing"] == report["dead"] == 0
          else "  FAIL: accepted jobs missing or dead")


def run(args: argparse.Namespace) -> int:
    client = ApiClient()
    stack = None
    if args.chaos:
        url = urlsplit(client.base_url)
        stack = find_stack(url.port or 80) if url.hostname in LOOPBACK else None
        missing = [role for role in ("consumer", "web") + (("redis",) if args.chaos == "redis" else ())
                   if stack is None or stack.first(role) is None]
        if missing:
            where = "no `forkline run` stack of this machine" if stack is None else f"no {missing[0]} in the stack"
            print(f"forkline: --chaos needs a `forkline run` stack on this machine that it can see, and finds "
                  f"{where} at {client.base_url}", file=sys.stderr)
            return 2
    burst = Burst(run=time.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:6])
    deadline = time.monotonic() + args.timeout
    try:
        with ThreadPoolExecutor(args.concurrency) as pool:
            futures = [pool.submit(submit, client, burst, seq, deadline) for seq in range(args.jobs)]
            if stack is not None:
                while len(burst.accepted) < args.jobs // 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
                chaos(stack, args.chaos, burst)
            for future in futures:
                future.result()
    except ApiError as exc:
        print(f"forkline: {exc}", file=sys.stderr)
        return 2
    report = report_of(burst, wait_for(client, burst, deadline), args.jobs)
    if args.cleanup:
        report["cleanedUp"] = cleanup(client, burst)
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return 1 if report["missing"] or report["dead"] else 0


def cleanup(client: ApiClient, burst: Burst) -> int:
    removed = 0
    for job_id in burst.accepted.values():
        try:
            client.call("DELETE", f"/jobs/{job_id}/record")
            removed += 1
        except ApiError:
            continue  # not finished, or gone already: its retention removes it
    return removed
