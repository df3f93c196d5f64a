"""Lambda entry points: thin translations from an event to the same functions.

http_handler: API Gateway HTTP API (payload 2.0), REST API and ALB events,
served by the same Falcon app (`adapters.wiring.build_app`) through apig-wsgi.
jobs_handler: an SQS event source; runs each record's job through
`functions.attempts.run_attempt`, which records every outcome in the job table,
and returns `batchItemFailures` with exactly the records to deliver again: a
retry is made invisible for the backoff delay (2 s, 4 s, 8 s); a dead job's
entry is put on the DLQ with its error and traceback, and its message deleted.
An attempt stops at JOB_TIMEOUT or STOP_MARGIN seconds before the function's own
timeout, whichever comes first, and counts as a failed attempt.
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from apig_wsgi import make_lambda_handler

from adapters.aws.client import AWS_ERRORS
from adapters.aws.jobs import SQSJobQueue, job_from_message
from adapters.huey.timeout import JobWatchdog
from adapters.logs import REQUEST_ID, FastLogger, setup_logging
from adapters.settings import Settings, load_settings
from adapters.wiring import Ports, build_app, build_ports
from functions.attempts import Attempt, Step, run_attempt
from functions.jobs import backoff_delay, run_job
from functions.models import JobRecord

log = logging.getLogger("forkline.lambda")
jobs_log = FastLogger("forkline.jobs")
MAX_VISIBILITY = 43200  # SQS's upper bound, 12 h
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
def _jobs_context() -> tuple[Settings, Ports, SQSJobQueue]:
    settings = load_settings()
    setup_logging("lambda-jobs", settings.log_level, settings.log_dir or None)
    ports = build_ports(settings)
    if not isinstance(ports.jobs, SQSJobQueue):
        raise RuntimeError("the jobs function needs QUEUE_BACKEND=sqs with JOB_STORE=dynamodb")
    return settings, ports, ports.jobs


def http_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _http()(event, context)


def queue_url_from_arn(arn: str, endpoint: str | None = None) -> str:
    _, _, _, region, account, name = arn.split(":", 5)
    return f"{endpoint.rstrip('/')}/{account}/{name}" if endpoint else f"https://sqs.{region}.amazonaws.com/{account}/{name}"


def seconds_left(context: Any) -> float:
    """The invocation's remaining time (unbounded when the context cannot say, as in a local call)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if remaining is not None else float("inf")


def run_limited(job: JobRecord, seconds: float, limit_name: str) -> Any:
    """Run the job's function, stopped (JobTimeout) after `seconds`."""
    watchdog = JobWatchdog(seconds, limit_name=limit_name)
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(0.05):
            watchdog.check()

    watcher = threading.Thread(target=watch, name="job-deadline", daemon=True)
    watcher.start()
    REQUEST_ID.set(job.requestId)  # in every line logged while the job runs
    try:
        with watchdog.limit():
            return run_job(job.type, job.payload)
    finally:
        finished.set()
        watcher.join(1.0)


def jobs_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    settings, ports, jobs = _jobs_context()
    failures = []
    for record in event.get("Records", []):
        left = seconds_left(context) - STOP_MARGIN
        if left <= 0:  # no time to run it: hand it back at once (SQS counts the receive)
            failures.append({"itemIdentifier": record["messageId"]})
            give_back(settings, jobs, record, 0)
            continue
        step = run_record(settings, ports, jobs, record, left)
        if step in (None, Step.retry, Step.redrive):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def run_record(settings: Settings, ports: Ports, jobs: SQSJobQueue, record: dict[str, Any],
               left: float) -> Step | None:
    """One record's attempt, stopped within `left` seconds; None when it could not be recorded."""
    attempt = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
    limit, limit_name = min((settings.job_timeout, "JOB_TIMEOUT"), (left, "the function's remaining time"))
    started = time.perf_counter()
    try:
        outcome = run_attempt(
            job_from_message(record["body"], time.time()), attempt, jobs, ports.dlq,
            run=lambda job: run_limited(job, limit, limit_name), clock=time.time,
            delay_for=lambda n: backoff_delay(n, settings.job_backoff_base, settings.job_backoff_max,
                                              settings.job_backoff_jitter, random.random()))
    except Exception as exc:  # unrecorded: the queue's visibility timeout brings it back
        log.error("job message %s not recorded on attempt %d: %s: %s", record.get("messageId"), attempt,
                  type(exc).__name__, exc, extra={"event": "job_unrecorded", "attempt": attempt})
        return None
    finally:
        REQUEST_ID.set(None)
    log_outcome(outcome, attempt, time.perf_counter() - started)
    if outcome.step == Step.retry:
        give_back(settings, jobs, record, min(int(outcome.delay), MAX_VISIBILITY))
    elif outcome.step == Step.redrive:  # its next receive moves it to the DLQ: let that come now
        give_back(settings, jobs, record, 0)
    return outcome.step


def give_back(settings: Settings, jobs: SQSJobQueue, record: dict[str, Any], delay: int) -> None:
    """Make the message visible again after `delay` seconds (else the queue's visibility timeout applies)."""
    try:
        jobs.sqs.client.change_message_visibility(
            QueueUrl=settings.jobs_sqs_queue_url or queue_url_from_arn(record["eventSourceARN"]),
            ReceiptHandle=record["receiptHandle"], VisibilityTimeout=delay)
    except AWS_ERRORS as err:
        log.error("could not set the visibility of %s: %s", record.get("messageId"), err)


def log_outcome(outcome: Attempt, attempt: int, seconds: float) -> None:
    job = outcome.record
    if job is None:
        return
    fields = {"jobId": job.id, "type": job.type, "requestId": job.requestId}
    if outcome.step == Step.completed:
        jobs_log.info("job completed", event="job_completed", attempt=attempt,
                      durationMs=round(seconds * 1000, 3), **fields)
    elif outcome.step == Step.retry:
        jobs_log.warning("job retrying", event="job_retrying", attempt=attempt, delay=outcome.delay,
                         error=outcome.error, **fields)
    else:
        jobs_log.warning("job dead", event="job_dead", attempts=attempt, error=outcome.error,
                         dlqWritten=outcome.step == Step.dead, **fields)
