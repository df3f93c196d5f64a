"""The composition root: the one place that turns settings into ports, the app and the consumer.

`build_ports` only constructs (nothing connects until first use, so it is safe
before a fork). `build_app` is the WSGI app of the web workers and of the Lambda
HTTP handler. `configure_consumer` points the Huey instance of each queue a consumer
serves at Redis and gives its hooks their ports; only a consumer process calls it.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import falcon

from adapters.http.app import create_app
from adapters.http.resources import AppDeps
from adapters.huey.tasks import ForklineHuey, encode_job, queue_huey
from adapters.metrics import PrometheusMetrics
from adapters.redis.client import RedisHandle, RedisTarget
from adapters.redis.clock import RedisClock
from adapters.redis.dlq import RedisDLQ
from adapters.redis.job_store import RedisJobQueue
from adapters.redis.probe import RedisProbe
from adapters.redis.workers import RedisWorkerRegistry
from adapters.settings import Settings
from functions.jobs import DEFAULT_QUEUE
from functions.limits import MAX_DELAY_SECONDS, SQS_MAX_DELAY_SECONDS
from functions.ports import DeadLetterQueue, HealthProbe, JobQueue, WorkerRegistry

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Ports:
    redis: RedisHandle
    jobs: JobQueue
    dlq: DeadLetterQueue
    probe: HealthProbe
    workers: WorkerRegistry
    clock: Callable[[], float]  # Unix seconds, the same on every host (Redis's clock with Redis)


def redis_target(settings: Settings) -> RedisTarget:
    """REDIS_URL; or the Sentinel master REDIS_SENTINELS name (REDIS_URL then gives credentials and TLS);
    or, with REDIS_CLUSTER, the cluster REDIS_URL's seed nodes belong to."""
    return RedisTarget(settings.redis_url or DEFAULT_REDIS_URL, settings.sentinel_addresses,
                       settings.redis_sentinel_master, settings.redis_cluster)


def build_dlq(settings: Settings, redis: RedisHandle) -> DeadLetterQueue:
    if settings.dlq_backend == "sqs":
        from adapters.aws.dlq import SQSDLQ  # boto3 (~9 MB per process) only where AWS is used

        assert settings.dlq_sqs_queue_url, "checked by Settings"
        return SQSDLQ(settings.dlq_sqs_queue_url, redrive_sources=tuple(settings.sqs_queue_urls.values()))
    return RedisDLQ(redis)


def build_ports(settings: Settings) -> Ports:
    """Ports for the configured backends; nothing connects until first use."""
    redis = RedisHandle(redis_target(settings), socket_timeout=1.0, connect_timeout=0.5)
    dlq = build_dlq(settings, redis)
    if settings.queue_backend == "sqs":  # with JOB_STORE=dynamodb (checked by Settings)
        from adapters.aws.job_table import JobTable  # boto3 only where AWS is used
        from adapters.aws.jobs import CloudProbe, SQSJobQueue
        from adapters.aws.workers import DynamoWorkerRegistry

        assert settings.jobs_table, "checked by Settings"
        table = JobTable(settings.jobs_table, settings.job_retention)
        sqs_jobs = SQSJobQueue(settings.sqs_queue_urls, table, event_sources=settings.event_sources)
        return Ports(redis=redis, jobs=sqs_jobs, dlq=dlq, probe=CloudProbe(sqs_jobs),
                     workers=DynamoWorkerRegistry(table), clock=time.time)
    jobs = RedisJobQueue(redis, encode_job, settings.job_retention)
    return Ports(redis=redis, jobs=jobs, dlq=dlq, probe=RedisProbe(redis_target(settings)),
                 workers=RedisWorkerRegistry(redis), clock=RedisClock(redis))


def build_app(settings: Settings) -> falcon.App:
    ports = build_ports(settings)
    max_delay = SQS_MAX_DELAY_SECONDS if settings.queue_backend == "sqs" else MAX_DELAY_SECONDS
    return create_app(AppDeps(jobs=ports.jobs, dlq=ports.dlq, probe=ports.probe, max_attempts=settings.max_attempts,
                              api_keys=settings.api_key_list, workers=ports.workers,
                              beat_seconds=settings.worker_heartbeat, metrics=PrometheusMetrics(ports.jobs, ports.dlq),
                              metrics_auth=settings.metrics_auth, access_log=settings.access_log,
                              max_replays=settings.dlq_max_replays, max_delay=max_delay,
                              priorities=settings.queue_backend != "sqs", clock=ports.clock))


def configure_consumer(settings: Settings, ports: Ports | None = None) -> list[ForklineHuey]:
    """The Huey instance of each queue this consumer serves (settings.served_queues), pointed at
    Redis with the hooks' ports (the Redis job queue only). With `default`, also the instance of
    the keyspace from before named queues, so jobs old processes enqueued still run."""
    ports = ports or build_ports(settings)
    if not isinstance(ports.jobs, RedisJobQueue):
        raise ValueError("the consumer runs Redis jobs; with QUEUE_BACKEND=sqs jobs run in the Lambda")
    job_metrics = PrometheusMetrics()
    stores = [ports.jobs.stores[queue] for queue in settings.served_queues]
    if DEFAULT_QUEUE in settings.served_queues and not settings.redis_cluster:
        stores.append(ports.jobs.legacy)  # (no cluster ran the code from before named queues)
    hueys = []
    for store in stores:
        huey = queue_huey(store.keys)
        huey.configure(redis_target(settings), settings.job_lease, store, ports.dlq, settings.max_attempts,
                       settings.job_backoff_base, settings.job_timeout, batch=settings.concurrency_of(store.keys.queue),
                       metrics=job_metrics, backoff_max=settings.job_backoff_max,
                       backoff_jitter=settings.job_backoff_jitter, priority_aging=settings.priority_aging)
        hueys.append(huey)
    return hueys


