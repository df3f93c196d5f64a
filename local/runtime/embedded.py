"""What `forkline run` starts first when it brings its own backing service: a Redis (when REDIS_URL is
unset), or with `--cloud` a moto server standing in for AWS (SQS and DynamoDB) with the queues and
the table of template.yaml. The supervisor keeps it alive as a child (the `redis` or `cloud` role)
and stops it last.
"""

import logging
import os
import time
from typing import Protocol

from adapters.settings import Settings
from local.runtime import redis_server
from local.runtime.roles import Boot

log = logging.getLogger("forkline.supervisor")

# The variables the emulated stack sets from template.yaml; the user's environment keeps the rest
# (log settings, API keys, and tunables such as JOB_BACKOFF_BASE).
CLOUD_WIRING = ("QUEUE_BACKEND", "JOBS_SQS_QUEUE_URL", "JOBS_SQS_QUEUE_URLS", "JOB_STORE", "JOBS_TABLE", "DLQ_BACKEND",
                "DLQ_SQS_QUEUE_URL")
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "forkline-local", "AWS_SECRET_ACCESS_KEY": "forkline-local",
                    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


class EmbeddedFailed(Exception):
    """The backing service did not come up (one line for the log)."""


class Embedded(Protocol):
    role: str

    def prepare(self, boot: Boot) -> None:
        """Choose its address (before its role's process is spawned)."""

    def ready(self, boot: Boot) -> Settings:
        """Wait until it answers; the settings every child gets. Raises EmbeddedFailed."""


class EmbeddedRedis:
    role = "redis"

    def prepare(self, boot: Boot) -> None:
        boot.redis_port = redis_server.free_port()
        boot.settings.redis_url = f"redis://127.0.0.1:{boot.redis_port}/0"

    def ready(self, boot: Boot) -> Settings:
        if not redis_server.wait_for_redis(boot.settings.redis_url or "", timeout=15):
            raise EmbeddedFailed("the embedded Redis did not start (see its log under DATA_DIR)")
        log.info("embedded Redis ready at %s", boot.settings.redis_url,
                 extra={"event": "redis_ready", "url": boot.settings.redis_url})
        return boot.settings


class EmbeddedCloud:
    role = "cloud"

    def prepare(self, boot: Boot) -> None:
        boot.cloud_port = redis_server.free_port()

    def ready(self, boot: Boot) -> Settings:
        """Wait for the moto server, create the template's resources on it, and point this process's
        environment (inherited by every child) and settings at them."""
        import boto3

        from local.cloud_emulation.cloud_template import JOBS_FUNCTION, function_environment, provision, yaml_load

        endpoint = f"http://127.0.0.1:{boot.cloud_port}"
        os.environ.update(FAKE_CREDENTIALS, AWS_ENDPOINT_URL=endpoint)
        sqs, dynamodb = boto3.client("sqs"), boto3.client("dynamodb")
        deadline = time.monotonic() + 30
        while True:
            try:
                sqs.list_queues()
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise EmbeddedFailed(f"the embedded AWS emulator (moto) did not start: {exc}") from None
                time.sleep(0.2)
        template = yaml_load()
        # maxReceiveCount = 1 + JobMaxRetries: from this run's JOB_MAX_RETRIES, so the two agree.
        names = provision(template, sqs, dynamodb, parameters={"JobMaxRetries": boot.settings.job_max_retries})
        wiring = function_environment(template, JOBS_FUNCTION, names)
        os.environ.update({name: wiring[name] for name in CLOUD_WIRING})
        settings = boot.settings.model_copy(update={
            "queue_backend": "sqs", "job_store": "dynamodb", "dlq_backend": "sqs", "jobs_table": wiring["JOBS_TABLE"],
            "jobs_sqs_queue_url": wiring["JOBS_SQS_QUEUE_URL"], "jobs_sqs_queue_urls": wiring["JOBS_SQS_QUEUE_URLS"],
            "dlq_sqs_queue_url": wiring["DLQ_SQS_QUEUE_URL"]})
        log.info("embedded AWS emulator ready at %s: queue %s, table %s (from template.yaml)", endpoint,
                 wiring["JOBS_SQS_QUEUE_URL"], wiring["JOBS_TABLE"], extra={"event": "cloud_ready", "url": endpoint})
        return settings


EMBEDDED: dict[str, type[Embedded]] = {"redis": EmbeddedRedis, "cloud": EmbeddedCloud}
