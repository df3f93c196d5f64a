"""Build the ports and the queue configuration from settings (no connection is opened)."""

from dataclasses import dataclass

from adapters import queue
from adapters.dlq.redis import RedisDLQ
from adapters.health import RedisProbe
from adapters.job_store import RedisJobQueue
from adapters.redis_client import RedisHandle
from adapters.settings import Settings
from functions.ports import DeadLetterQueue

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Ports:
    redis: RedisHandle
    jobs: RedisJobQueue
    dlq: DeadLetterQueue
    probe: RedisProbe


def build_dlq(settings: Settings, redis: RedisHandle) -> DeadLetterQueue:
    return RedisDLQ(redis)


def build_ports(settings: Settings) -> Ports:
    url = settings.redis_url or DEFAULT_REDIS_URL
    redis = RedisHandle(url, socket_timeout=1.0, connect_timeout=0.5)
    jobs = RedisJobQueue(redis, queue.encode_job, settings.job_retention)
    dlq = build_dlq(settings, redis)
    queue.configure(url, settings.job_lease, jobs, dlq, settings.max_attempts, settings.job_backoff_base)
    return Ports(redis=redis, jobs=jobs, dlq=dlq, probe=RedisProbe(url))
