"""The `forkline` command: run (everything), serve (HTTP), worker (jobs), bench."""

import argparse
import sys

from adapters.settings import SettingsError, load_settings
from local import bench

COMMANDS = {
    "run": "the whole stack: HTTP workers, job consumer, and an embedded Redis when REDIS_URL is unset",
    "serve": "the HTTP workers only (one per core, WEB_CONCURRENCY overrides)",
    "worker": "the job consumer only (WORKER_CONCURRENCY threads per process)",
    "bench": "start the stack on loopback and measure it with wrk (a benchmark, not a test)",
}


def parser() -> argparse.ArgumentParser:
    """Every command and option; anything else is a usage error (exit status 2). Settings come
    from the environment (see the README), not from options."""
    top = argparse.ArgumentParser(prog="forkline", description="Multi-core API server with a job queue")
    sub = top.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name == "bench":
            bench.add_arguments(command)
    return top


def bjoern_stops_gracefully() -> bool:
    """bjoern built with SIGINT handling: without it a web worker cannot finish its request and stop."""
    import bjoern

    return bool(bjoern._bjoern.features.get("has_sigint_handling"))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "bench":
        return bench.run_bench(args)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"forkline: {exc}", file=sys.stderr)
        return 2

    if args.command in ("run", "serve") and not bjoern_stops_gracefully():
        print("forkline: this bjoern has no SIGINT handling (has_sigint_handling), so its workers cannot "
              "stop gracefully: install the bjoern-binary wheel", file=sys.stderr)
        return 2

    from local.supervisor import supervise

    if args.command == "run":
        return supervise(settings, web=True, consumer=True, embedded_redis=settings.redis_url is None)
    if args.command == "serve":
        return supervise(settings, web=True, consumer=False, embedded_redis=False)
    return supervise(settings, web=False, consumer=True, embedded_redis=False)


if __name__ == "__main__":
    sys.exit(main())
