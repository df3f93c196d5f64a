"""Lambda entry points: thin translations from an event to the same functions.

http_handler: API Gateway HTTP API (payload 2.0), REST API and ALB events,
served by the same Falcon app (`adapters.wiring.build_app`) through apig-wsgi.
jobs_handler: an SQS event source; runs each record's job through the
SQSJobRunner (adapters/aws/job_runner.py: `functions.attempts.run_attempt`,
every outcome recorded in the job table) and returns `batchItemFailures` with
exactly the records to deliver again: a retry is made invisible for the backoff
delay (2 s, 4 s, 8 s); a dead job's entry is put on the DLQ with its error and
traceback, and its message deleted by the event source mapping. An attempt stops
at JOB_TIMEOUT or STOP_MARGIN seconds before the function's own timeout,
whichever comes first, and counts as a failed attempt.
"""

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from apig_wsgi import make_lambda_handler

from adapters.aws.job_runner import GIVE_BACK, SQSJobRunner
from adapters.logs import setup_logging
from adapters.settings import load_settings
from adapters.tracing import tracing
from adapters.wiring import build_app, build_cloud_ports, build_job_runner

log = logging.getLogger("forkline.lambda")
STOP_MARGIN = 3.0  # seconds left to record an outcome before the function's own timeout


@lru_cache(maxsize=1)
def _http() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    settings = load_settings()
    setup_logging("lambda-http", settings.log_level, settings.log_dir or None)
    if not settings.api_key_list:  # once per cold start
        log.warning("API_KEYS is empty: /jobs, /dlq and /workers are open to anyone who can reach the API "
                    "(set the ApiKeys parameter)", extra={"event": "auth_disabled"})
    return make_lambda_handler(build_app(settings), binary_support=False)


@lru_cache(maxsize=1)
def _jobs_runner() -> SQSJobRunner:
    settings = load_settings()
    setup_logging("lambda-jobs", settings.log_level, settings.log_dir or None)
    return build_job_runner(settings, build_cloud_ports(settings))


def http_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return _http()(event, context)
    finally:
        tracing().flush()  # the function may be frozen once it answers: its spans go now


def seconds_left(context: Any) -> float:
    """The invocation's remaining time (unbounded when the context cannot say, as in a local call)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if remaining is not None else float("inf")


def jobs_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    runner = _jobs_runner()
    failures = []
    for record in event.get("Records", []):
        left = seconds_left(context) - STOP_MARGIN
        queue_url = runner.jobs.url_of_arn(record["eventSourceARN"])  # one event source per named queue
        if left <= 0:  # no time to run it: hand it back at once (SQS counts the receive)
            runner.set_visibility(queue_url, record["receiptHandle"], 0)
            step = None
        else:
            step = runner.run_message(record, queue_url, left)
        if step is None or step in GIVE_BACK:
            failures.append({"itemIdentifier": record["messageId"]})
    tracing().flush()
    return {"batchItemFailures": failures}
