"""The `forkline` command: run (everything), serve (HTTP), worker (jobs), bench."""

import argparse
import os
import shutil
import sys

from setproctitle import setproctitle

from adapters import metrics
from adapters.logs import setup_logging
from adapters.settings import Settings, SettingsError, load_settings
from local.commands import bench, check, ops

COMMANDS = {
    "run": "the whole stack: HTTP workers, job consumers, and an embedded Redis when REDIS_URL is unset",
    "serve": "the HTTP workers only (cores + 1; WEB_CONCURRENCY overrides)",
    "worker": "the job consumers only (one process per core, CONSUMER_PROCESSES overrides; each runs "
              "WORKER_CONCURRENCY threads per named queue, QUEUE_CONCURRENCY per queue)",
    "bench": "start the stack on loopback and measure it with wrk (a benchmark, not a test)",
}
# Over the HTTP API (FORKLINE_URL, FORKLINE_API_KEY): local/commands/ops.py.
OPERATOR_COMMANDS = ("stats", "queues", "jobs", "history", "workers", "dlq")


def parser() -> argparse.ArgumentParser:
    """Every command and option; anything else is a usage error (exit status 2). Settings come
    from the environment (docs/configuration.md), not from options."""
    top = argparse.ArgumentParser(prog="forkline", description="Multi-core API server with a job queue")
    sub = top.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name == "bench":
            bench.add_arguments(command)
        if name in ("run", "worker"):
            command.add_argument("--queues", metavar="NAME,...",
                                 help="the queues its consumers serve (as CONSUMER_QUEUES); default: all declared")
        if name == "run":
            command.add_argument("--cloud", action="store_true",
                                 help="the cloud shape on this machine: an embedded AWS emulator (moto) with the "
                                      "queues and table of template.yaml, the jobs function behind its SQS trigger "
                                      "(as CLOUD_EMULATION=true)")
    ops.add_arguments(sub)
    check.add_arguments(sub)
    return top


def bjoern_stops_gracefully() -> bool:
    """bjoern built with SIGINT handling: without it a web worker cannot finish its request and stop."""
    import bjoern

    return bool(bjoern._bjoern.features.get("has_sigint_handling"))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "bench":
        return bench.run_bench(args)
    if args.command in OPERATOR_COMMANDS:
        return ops.run(args)
    if args.command == "check":
        return check.run(args)
    overrides = {"consumer_queues": args.queues} if getattr(args, "queues", None) else {}
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"forkline: {exc}", file=sys.stderr)
        return 2

    if args.command in ("run", "serve") and not bjoern_stops_gracefully():
        print("forkline: this bjoern has no SIGINT handling (has_sigint_handling), so its workers cannot "
              "stop gracefully: install the bjoern-binary wheel", file=sys.stderr)
        return 2

    if getattr(args, "cloud", False):
        settings.cloud_emulation = True
    if settings.cloud_emulation and (args.command != "run" or not cloud_tools_installed()):
        print("forkline: the cloud emulation is `forkline run --cloud`, and needs the `cloud` extra "
              "(pip install 'forkline[cloud]': moto, pyyaml)", file=sys.stderr)
        return 2
    web, consumer = args.command in ("run", "serve"), args.command in ("run", "worker")
    embedded = "cloud" if settings.cloud_emulation else None
    if args.command == "run" and not settings.redis_url and not settings.cloud_emulation:
        embedded = "redis"
    return supervise(settings, web, consumer, embedded)


def cloud_tools_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("moto", "yaml", "flask"))


def supervise(settings: Settings, web: bool, consumer: bool, embedded: str | None) -> int:
    """Run the supervisor in this process until it stops; its exit status.

    The metrics directory is chosen before the supervisor's module (and with it
    prometheus_client) is imported. Importing it preloads the worker bodies, never a
    connection, so a new worker is up at once.
    """
    metrics_dir = metrics.use_directory(os.path.join(settings.data_dir, "metrics"))
    try:
        if embedded is None and settings.queue_backend == "redis":
            from local.runtime.preflight import eviction_refused

            if eviction_refused(settings):
                return 2
        from local.runtime.supervisor import Arbiter

        setup_logging("supervisor", settings.log_level, settings.log_dir)
        setproctitle("forkline: supervisor")
        return Arbiter(settings, web=web, consumer=consumer, embedded=embedded).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
