"""Lambda entry points: thin translations from an event to the same functions.

http_handler: API Gateway HTTP API (payload 2.0), REST API and ALB events,
served by the same Falcon app (`adapters.wiring.build_app`) through apig-wsgi.
jobs_handler: an SQS event source; runs each record's job function and returns
`batchItemFailures` with exactly the records that failed. A failed record is
made invisible for the backoff delay (2 s, 4 s, 8 s); after
maxReceiveCount receives the queue's redrive policy moves it to the DLQ.
"""

import json
import logging
import random
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from apig_wsgi import make_lambda_handler

from adapters.aws.client import SQS_ERRORS, SQSHandle
from adapters.logs import setup_logging
from adapters.settings import Settings, load_settings
from adapters.wiring import build_app
from functions.jobs import backoff_delay, run_job

log = logging.getLogger("forkline.lambda")
MAX_VISIBILITY = 43200  # SQS's upper bound, 12 h


@lru_cache(maxsize=1)
def _http() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    settings = load_settings()
    setup_logging("lambda-http", settings.log_level, settings.log_dir or None)
    if not settings.api_key_list:  # once per cold start
        log.warning("API_KEYS is empty: /jobs, /dlq and /workers are open to anyone who can reach the API "
                    "(set the ApiKeys parameter)", extra={"event": "auth_disabled"})
    return make_lambda_handler(build_app(settings), binary_support=False)


@lru_cache(maxsize=1)
def _jobs_context() -> tuple[Settings, SQSHandle]:
    settings = load_settings()
    setup_logging("lambda-jobs", settings.log_level, settings.log_dir or None)
    return settings, SQSHandle()


def http_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _http()(event, context)


def queue_url_from_arn(arn: str, endpoint: str | None = None) -> str:
    _, _, _, region, account, name = arn.split(":", 5)
    return f"{endpoint.rstrip('/')}/{account}/{name}" if endpoint else f"https://sqs.{region}.amazonaws.com/{account}/{name}"


def jobs_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    settings, sqs = _jobs_context()
    failures = []
    for record in event.get("Records", []):
        try:
            message = json.loads(record["body"])
            run_job(message["type"], message["payload"])
        except Exception as exc:
            attempt = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
            log.warning("job message %s failed on attempt %d: %s: %s", record.get("messageId"), attempt,
                        type(exc).__name__, exc, extra={"event": "job_failed", "attempt": attempt})
            failures.append({"itemIdentifier": record["messageId"]})
            delay = min(int(backoff_delay(attempt, settings.job_backoff_base, settings.job_backoff_max,
                                          settings.job_backoff_jitter, random.random())), MAX_VISIBILITY)
            try:
                sqs.client.change_message_visibility(
                    QueueUrl=settings.jobs_sqs_queue_url or queue_url_from_arn(record["eventSourceARN"]),
                    ReceiptHandle=record["receiptHandle"], VisibilityTimeout=delay)
            except SQS_ERRORS as err:  # the queue's own visibility timeout applies instead
                log.error("could not set the retry delay of %s: %s", record.get("messageId"), err)
    return {"batchItemFailures": failures}
