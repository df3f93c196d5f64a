"""boto3 clients made lazily (one per process and service) and AWS errors turned into 503s."""

import logging
import os
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from functions.errors import Unavailable

log = logging.getLogger("forkline.aws")

AWS_ERRORS = (BotoCoreError, ClientError)


class AWSHandle:
    """A boto3 client of one service, made on first use in each process (never shared across a fork)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._client: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    # AWS_ENDPOINT_URL, AWS_REGION and credentials come from the standard variables.
                    config = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
                    self._client = boto3.session.Session().client(self.service, config=config)  # type: ignore[call-overload]
                    self._pid = os.getpid()
        return self._client


def error_response(exc: Exception) -> dict[str, Any]:
    return dict(exc.response) if isinstance(exc, ClientError) else {}


def error_code(exc: Exception) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else type(exc).__name__


def aws_unavailable(exc: Exception, action: str, dependency: str = "sqs") -> Unavailable:
    code = error_code(exc)
    log.error("%s %s failed: %s", dependency, action, code,
              extra={"event": f"{dependency}_error", "action": action, "code": code})
    name = {"sqs": "The SQS queue", "dynamodb": "The DynamoDB job table",
            "lambda": "The Lambda event source mapping"}.get(dependency, dependency)
    return Unavailable(f"{name} is unavailable ({code or 'error'})", dependency=dependency)
