"""Build the ports and the queue configuration from settings (no connection is opened)."""

import time
from dataclasses import dataclass

from adapters import queue
from adapters.dlq.redis import RedisDLQ
from adapters.dlq.sqs import SQSDLQ
from adapters.health import RedisProbe
from adapters.job_store import RedisJobQueue
from adapters.redis_client import RedisHandle
from adapters.settings import Settings
from adapters.sqs_queue import SQSJobQueue
from functions.ports import DeadLetterQueue, HealthProbe, JobQueue

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Ports:
    redis: RedisHandle
    jobs: JobQueue
    dlq: DeadLetterQueue
    probe: HealthProbe


class SQSProbe:
    """Health of the SQS job queue, checked at most once per `ttl` seconds."""

    def __init__(self, jobs: SQSJobQueue, ttl: float = 5.0):
        self.jobs, self.ttl = jobs, ttl
        self._checked_at, self._up = float("-inf"), False

    def dependencies(self) -> dict[str, bool]:
        if time.monotonic() - self._checked_at >= self.ttl:
            self._up = self.jobs.reachable()
            self._checked_at = time.monotonic()
        return {"sqs": self._up}


def build_dlq(settings: Settings, redis: RedisHandle) -> DeadLetterQueue:
    if settings.dlq_backend == "sqs":
        return SQSDLQ(settings.dlq_sqs_queue_url)
    return RedisDLQ(redis)


def build_ports(settings: Settings) -> Ports:
    """Ports for the configured backends; nothing connects until first use."""
    url = settings.redis_url or DEFAULT_REDIS_URL
    redis = RedisHandle(url, socket_timeout=1.0, connect_timeout=0.5)
    dlq = build_dlq(settings, redis)
    if settings.queue_backend == "sqs":
        sqs_jobs = SQSJobQueue(settings.jobs_sqs_queue_url)
        return Ports(redis=redis, jobs=sqs_jobs, dlq=dlq, probe=SQSProbe(sqs_jobs))
    jobs = RedisJobQueue(redis, queue.encode_job, settings.job_retention)
    queue.configure(url, settings.job_lease, jobs, dlq, settings.max_attempts, settings.job_backoff_base,
                    settings.job_timeout, batch=settings.worker_concurrency)
    return Ports(redis=redis, jobs=jobs, dlq=dlq, probe=RedisProbe(url))
