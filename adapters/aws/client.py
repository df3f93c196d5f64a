"""boto3 SQS clients made lazily (per process) and SQS errors turned into 503s."""

import logging
import os
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from functions.errors import Unavailable

log = logging.getLogger("forkline.sqs")

SQS_ERRORS = (BotoCoreError, ClientError)


class SQSHandle:
    def __init__(self) -> None:
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
                    self._client = boto3.session.Session().client("sqs", config=config)
                    self._pid = os.getpid()
        return self._client


def sqs_unavailable(exc: Exception, action: str) -> Unavailable:
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
    log.error("SQS %s failed: %s", action, code, extra={"event": "sqs_error", "action": action, "code": code})
    return Unavailable(f"The SQS queue is unavailable ({code or 'error'})", dependency="sqs")
