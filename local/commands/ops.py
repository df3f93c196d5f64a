"""Operator commands over the HTTP API: stats, queues list/pause/resume, jobs show/cancel/promote, workers,
dlq list/show/replay/delete/purge.

Human tables by default, `--json` for scripts; exit status 1 with one line when the API is
unreachable, refuses the key, or refuses the request. A bulk replay is many short calls
(at most 100 jobs each), paced by `--per-second`: the rate is the caller's, no request is
held open on a web worker.
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from local.commands.api_client import ApiClient, ApiError

FILTERS = (("--type", "type"), ("--queue", "queue"), ("--error-contains", "errorContains"),
           ("--failed-after", "failedAfter"),
           ("--failed-before", "failedBefore"))


def add_arguments(sub: Any) -> None:
    stats = sub.add_parser("stats", help="queue counts", description="Queue counts (GET /queue/stats)")
    stats.add_argument("--watch", nargs="?", type=float, const=2.0, metavar="SECONDS", help="refresh every 2 s")
    queues = sub.add_parser("queues", help="named queues", description="Each named queue's figures; pause, resume")
    queues_sub = queues.add_subparsers(dest="action")
    queues_sub.add_parser("pause", help="consumers stop claiming from it; jobs are still accepted").add_argument("name")
    queues_sub.add_parser("resume", help="consumers claim from it again").add_argument("name")
    jobs = sub.add_parser("jobs", help="one job", description="One job (GET /jobs/{id})")
    jobs_sub = jobs.add_subparsers(dest="action", required=True)
    jobs_sub.add_parser("show").add_argument("id")
    listing = jobs_sub.add_parser("list", help="jobs by state, newest first (GET /jobs)")
    listing.add_argument("--state", help="queued, scheduled, active, retrying, completed, dead, cancelled, pending")
    listing.add_argument("--queue")
    listing.add_argument("--type")
    listing.add_argument("--limit", type=int, default=20, help="per page, 1-100 (20)")
    listing.add_argument("--cursor", help="the page after the one that printed it")
    history = sub.add_parser("history", help="jobs per minute or hour", description="Accepted, completed, failed "
                             "and retried jobs per minute (24 h) or hour (7 days) (GET /queue/history)")
    history.add_argument("--queue")
    history.add_argument("--step", choices=("minute", "hour"), default="minute")
    history.add_argument("--since", type=float, metavar="SECONDS_AGO", help="default: an hour (minute) or a day")
    jobs_sub.add_parser("cancel", help="cancel a job that has not started").add_argument("id")
    jobs_sub.add_parser("promote", help="start a scheduled or retrying job now").add_argument("id")
    sub.add_parser("workers", help="live consumers", description="The live consumers (GET /workers)")
    dlq = sub.add_parser("dlq", help="the dead-letter queue", description="Operate the dead-letter queue")
    dlq_sub = dlq.add_subparsers(dest="action", required=True)
    listing = dlq_sub.add_parser("list")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--offset", type=int, default=0)
    dlq_sub.add_parser("show").add_argument("id")
    dlq_sub.add_parser("delete").add_argument("id")
    replay = dlq_sub.add_parser("replay")
    replay.add_argument("--dry-run", action="store_true", help="say what would be replayed, replay nothing")
    replay.add_argument("--per-second", type=float, default=20.0, help="most jobs replayed per second (20)")
    replay.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge = dlq_sub.add_parser("purge")
    purge.add_argument("--yes", action="store_true", required=True, help="required: a purge cannot be undone")
    for parser in (listing, replay, purge):
        for flag, _ in FILTERS:
            parser.add_argument(flag)
    for parser in (stats, queues, history, sub.choices["workers"], *dlq_sub.choices.values(),
                   *jobs_sub.choices.values(), *queues_sub.choices.values()):
        parser.add_argument("--json", action="store_true", help="JSON for scripts")


def filters_of(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, flag[2:].replace("-", "_")) for flag, name in FILTERS
            if getattr(args, flag[2:].replace("-", "_")) is not None}


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def show(value: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    print(json.dumps(value, indent=2) if as_json else human(value))


def run(args: argparse.Namespace, api: ApiClient | None = None) -> int:
    api = api or ApiClient()
    try:
        return COMMANDS[(args.command, getattr(args, "action", None))](args, api)
    except ApiError as exc:
        print(f"forkline: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def cmd_stats(args: argparse.Namespace, api: ApiClient) -> int:
    while True:
        stats = api.call("GET", "/queue/stats")
        show(stats, args.json, lambda s: table([{k: v for k, v in s.items() if k != "queues"}],
                                               [k for k in s if k != "queues"]))
        if not args.watch:
            return 0
        sys.stdout.flush()  # each table as it is read, also into a pipe (`| tee`)
        time.sleep(args.watch)


def cmd_queues(args: argparse.Namespace, api: ApiClient) -> int:
    queues = api.call("GET", "/queue/stats")["queues"]
    rows = [{"queue": name, **figures} for name, figures in queues.items()]
    show(queues, args.json, lambda _: table(rows, ["queue", "waiting", "active", "delayed", "completed", "failed",
                                                    "dlq", "paused"]))
    return 0


def cmd_queue_pause(args: argparse.Namespace, api: ApiClient) -> int:
    answer = api.call("POST", f"/queues/{args.name}/{args.action}")
    show(answer, args.json, lambda a: f"{a['queue']} {'paused' if a['paused'] else 'resumed'}")
    return 0


def cmd_job(args: argparse.Namespace, api: ApiClient) -> int:
    job = api.call("GET", f"/jobs/{args.id}")
    show(job, args.json, lambda j: "\n".join(f"{k:14} {v}" for k, v in j.items()))
    return 0


def cmd_jobs_list(args: argparse.Namespace, api: ApiClient) -> int:
    page = api.call("GET", "/jobs", query={"state": args.state, "queue": args.queue, "type": args.type,
                                            "limit": args.limit, "cursor": args.cursor})
    rows = [{**j, "updatedAt": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(j["updatedAt"])),
             "progress": "" if j.get("progress") is None else f"{j['progress']:.0%}",
             "error": (j.get("lastError") or "")[:50]} for j in page["items"]]
    more = f"\nnext page: --cursor {page['cursor']}" if page["cursor"] else ""
    show(page, args.json, lambda _: table(rows, ["id", "queue", "type", "state", "attempts", "progress", "updatedAt",
                                                              "error"])
         + more)
    return 0


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[int]) -> str:
    top = max(values) or 1
    return "".join(SPARKS[min(len(SPARKS) - 1, v * len(SPARKS) // (top + 1))] if v else " " for v in values)


def cmd_history(args: argparse.Namespace, api: ApiClient) -> int:
    since = None if args.since is None else time.time() - args.since
    history = api.call("GET", "/queue/history", query={"queue": args.queue, "step": args.step, "since": since})
    events = ("accepted", "completed", "failed", "retried")
    rows = [{"at": time.strftime("%m-%d %H:%M", time.gmtime(b["at"])), **b} for b in history["buckets"] if
            any(b[e] for e in events)]

    def human(h: Any) -> str:
        if sys.stdout.isatty():  # a terminal: one line per event, a character per bucket
            return "\n".join(f"{e:>9} {sparkline([b[e] for b in h['buckets']])} {sum(b[e] for b in h['buckets'])}"
                              for e in events)
        return table(rows, ["at", *events])

    show(history, args.json, human)
    return 0


def cmd_job_cancel(args: argparse.Namespace, api: ApiClient) -> int:
    job = api.call("DELETE", f"/jobs/{args.id}")
    show(job, args.json, lambda j: f"{j['id']} cancelled")
    return 0


def cmd_job_promote(args: argparse.Namespace, api: ApiClient) -> int:
    job = api.call("POST", f"/jobs/{args.id}/promote")
    show(job, args.json, lambda j: f"{j['id']} {j['state']}: it starts now")
    return 0


def cmd_workers(args: argparse.Namespace, api: ApiClient) -> int:
    workers = api.call("GET", "/workers")
    now = time.time()
    rows = [{**w, "running": len(w["running"]), "up": f"{now - w['startedAt']:.0f}s",
             "beat": f"{now - w['lastBeat']:.1f}s ago"} for w in workers["items"]]
    show(workers, args.json, lambda _: table(rows, ["host", "pid", "queues", "concurrency", "running", "done",
                                                     "up", "beat"]))
    return 0


def cmd_dlq_list(args: argparse.Namespace, api: ApiClient) -> int:
    page = api.call("GET", "/dlq", query={**filters_of(args), "limit": args.limit, "offset": args.offset})
    rows = [{**e, "failedAt": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["failedAt"])),
             "error": e["error"][:60]} for e in page["items"]]
    show(page, args.json, lambda p: table(rows, ["jobId", "queue", "type", "attempts", "replays", "failedAt", "error"])
         + f"\n{p['total']} matching")
    return 0


def cmd_dlq_show(args: argparse.Namespace, api: ApiClient) -> int:
    entry = api.call("GET", f"/dlq/{args.id}")
    show(entry, args.json, lambda e: "\n".join(f"{k:10} {v}" for k, v in e.items() if k != "traceback")
         + "\n\n" + e["traceback"])
    return 0


def cmd_dlq_delete(args: argparse.Namespace, api: ApiClient) -> int:
    api.call("DELETE", f"/dlq/{args.id}")
    show({"deleted": args.id}, args.json, lambda d: f"deleted {d['deleted']}")
    return 0


def cmd_dlq_purge(args: argparse.Namespace, api: ApiClient) -> int:
    purged = 0
    while True:
        report = api.call("POST", "/dlq/purge", {**filters_of(args), "confirm": True})
        purged += report["purged"]
        if not report["remaining"] or not report["purged"]:
            break
    show({"purged": purged, "remaining": report["remaining"]}, args.json,
         lambda r: f"purged {r['purged']}; {r['remaining']} matching left")
    return 0


def cmd_dlq_replay(args: argparse.Namespace, api: ApiClient) -> int:
    """Many calls of at most 100 (fewer when --per-second is lower), paced to the rate."""
    where = filters_of(args)
    plan = api.call("POST", "/dlq/replay", {**where, "dryRun": True})
    if args.dry_run:
        show(plan, args.json, lambda p: f"{p['remaining']} would be replayed ({p['matched']} matching, "
             f"{p['skipped']} skipped: replayed DLQ_MAX_REPLAYS times)"
             + ("" if p["complete"] else "; the DLQ was not read whole, more may match")
             + "".join(f"\n  {job_id}" for job_id in p["jobIds"]))
        return 0
    total = plan["remaining"]
    if not args.yes and not confirm(f"Replay {total} dead jobs at {args.per_second:g}/s?"):
        print("forkline: not replayed (answer y, or pass --yes)", file=sys.stderr)
        return 1
    per_call = max(1, min(100, int(args.per_second)))
    replayed, skipped, started = 0, plan["skipped"], time.monotonic()
    while True:
        report = api.call("POST", "/dlq/replay", {**where, "limit": per_call})
        replayed += report["replayed"]
        progress(replayed, max(total, replayed + report["remaining"]))
        if not report["replayed"] or (not report["remaining"] and report["complete"]):
            break
        time.sleep(max(0.0, started + replayed / args.per_second - time.monotonic()))
    elapsed = time.monotonic() - started
    show({"replayed": replayed, "skipped": skipped, "seconds": round(elapsed, 1)}, args.json,
         lambda r: f"replayed {r['replayed']} in {r['seconds']} s; {r['skipped']} skipped "
                   "(replayed DLQ_MAX_REPLAYS times)")
    return 0


def confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def progress(done: int, total: int) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
    end = "\r" if sys.stderr.isatty() else "\n"
    print(bar, end=end, file=sys.stderr, flush=True)


COMMANDS: dict[tuple[str, str | None], Callable[[argparse.Namespace, ApiClient], int]] = {
    ("stats", None): cmd_stats,
    ("queues", None): cmd_queues,
    ("queues", "pause"): cmd_queue_pause,
    ("queues", "resume"): cmd_queue_pause,
    ("jobs", "show"): cmd_job,
    ("jobs", "cancel"): cmd_job_cancel,
    ("jobs", "promote"): cmd_job_promote,
    ("jobs", "list"): cmd_jobs_list,
    ("history", None): cmd_history,
    ("workers", None): cmd_workers,
    ("dlq", "list"): cmd_dlq_list,
    ("dlq", "show"): cmd_dlq_show,
    ("dlq", "delete"): cmd_dlq_delete,
    ("dlq", "replay"): cmd_dlq_replay,
    ("dlq", "purge"): cmd_dlq_purge,
}
