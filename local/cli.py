"""The `forkline` command: run (everything), serve (HTTP), worker (jobs)."""

import argparse
import sys

from adapters.settings import SettingsError, load_settings

COMMANDS = {
    "run": "the whole stack: HTTP workers, job consumer, and an embedded Redis when REDIS_URL is unset",
    "serve": "the HTTP workers only (one per core, WEB_CONCURRENCY overrides)",
    "worker": "the job consumer only (WORKER_CONCURRENCY threads per process)",
    "bench": "start the stack on loopback and measure it with wrk (a benchmark, not a test)",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="forkline", description="Multi-core API server with a job queue")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text)
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from local.bench import main as bench

        return bench(rest)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"forkline: {exc}", file=sys.stderr)
        return 2

    from local.supervisor import supervise

    if args.command == "run":
        return supervise(settings, web=True, consumer=True, embedded_redis=settings.redis_url is None)
    if args.command == "serve":
        return supervise(settings, web=True, consumer=False, embedded_redis=False)
    return supervise(settings, web=False, consumer=True, embedded_redis=False)


if __name__ == "__main__":
    sys.exit(main())
