"""The composition root: the one place that turns settings into ports, the app, the consumer's
Huey instances and the SQS job runner.

Two pairings, each with its own typed ports: `RedisPorts` (jobs on Redis, run by the Huey
consumers) and `CloudPorts` (jobs on SQS with the DynamoDB job table, run by the Lambda jobs
function or the SQS worker). `build_ports` picks one from QUEUE_BACKEND; nothing else looks at
which pairing it has. Building only constructs: nothing connects until first use, so it is safe
before a fork.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import falcon

from adapters.http.app import AppDeps, create_app
from adapters.huey.forkline_huey import ForklineHuey, encode_job, queue_huey
from adapters.metrics import PrometheusMetrics
from adapters.redis.client import RedisHandle, RedisTarget
from adapters.redis.clock import RedisClock
from adapters.redis.dlq import RedisDLQ
from adapters.redis.job_queue import RedisJobQueue
from adapters.redis.probe import RedisProbe
from adapters.redis.workers import RedisWorkerRegistry
from adapters.settings import Settings
from adapters.tracing import tracing
from functions.jobs import DEFAULT_QUEUE
from functions.limits import MAX_DELAY_SECONDS, SQS_MAX_DELAY_SECONDS
from functions.ports import DeadLetterQueue, HealthProbe, JobMetrics, JobQueue, WorkerRegistry

if TYPE_CHECKING:  # boto3 (~9 MB per process) is imported only where AWS is used
    from adapters.aws.job_runner import SQSJobRunner
    from adapters.aws.jobs import SQSJobQueue

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class RedisPorts:
    """QUEUE_BACKEND=redis: the queues, job records, heartbeats and clock on Redis; the DLQ on
    Redis or SQS (DLQ_BACKEND)."""

    redis: RedisHandle
    jobs: RedisJobQueue
    dlq: DeadLetterQueue
    probe: HealthProbe
    workers: WorkerRegistry
    clock: Callable[[], float]  # Unix seconds, the same on every host: Redis's clock


@dataclass(frozen=True)
class CloudPorts:
    """QUEUE_BACKEND=sqs with JOB_STORE=dynamodb: the queues on SQS, job records and heartbeats in
    the DynamoDB job table, the DLQ on SQS."""

    jobs: SQSJobQueue
    dlq: DeadLetterQueue
    probe: HealthProbe
    workers: WorkerRegistry
    clock: Callable[[], float]  # Unix seconds (the host's clock: AWS keeps it synchronised)


Ports = RedisPorts | CloudPorts


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


def redis_handle(settings: Settings) -> RedisHandle:
    # Half a second bounds a request waiting on a Redis that hangs (plus the replicas' acknowledgement
    # time, with REDIS_REPLICA_ACKS); the breaker then answers at once.
    return RedisHandle(redis_target(settings), socket_timeout=0.5, connect_timeout=0.5,
                       replica_acks=settings.redis_replica_acks, ack_timeout_ms=settings.redis_replica_ack_timeout_ms)


def build_redis_ports(settings: Settings) -> RedisPorts:
    redis = redis_handle(settings)
    encode = partial(encode_job, newest=settings.queue_message_format)
    return RedisPorts(redis=redis, jobs=RedisJobQueue(redis, encode, settings.job_retention),
                      dlq=build_dlq(settings, redis), probe=RedisProbe(redis_target(settings)),
                      workers=RedisWorkerRegistry(redis), clock=RedisClock(redis))


def build_cloud_ports(settings: Settings) -> CloudPorts:
    if settings.queue_backend != "sqs":
        raise ValueError("this runs cloud jobs: it needs QUEUE_BACKEND=sqs with JOB_STORE=dynamodb")
    from adapters.aws.job_table import JobTable
    from adapters.aws.jobs import CloudProbe, SQSJobQueue
    from adapters.aws.workers import DynamoWorkerRegistry

    assert settings.jobs_table, "checked by Settings"
    table = JobTable(settings.jobs_table, settings.job_retention)
    jobs = SQSJobQueue(settings.sqs_queue_urls, table, event_sources=settings.event_sources)
    # The DLQ is SQS's in the template; DLQ_BACKEND=redis is allowed here too (the client connects on first use).
    return CloudPorts(jobs=jobs, dlq=build_dlq(settings, redis_handle(settings)), probe=CloudProbe(jobs),
                      workers=DynamoWorkerRegistry(table), clock=time.time)


def build_ports(settings: Settings) -> Ports:
    """The ports of the configured pairing; nothing connects until first use."""
    return build_cloud_ports(settings) if settings.queue_backend == "sqs" else build_redis_ports(settings)


def build_app(settings: Settings) -> falcon.App:
    """The WSGI app of the web workers and of the Lambda HTTP handler, on either pairing."""
    ports = build_ports(settings)
    cloud = isinstance(ports, CloudPorts)
    jobs: JobQueue = ports.jobs
    return create_app(AppDeps(
        jobs=jobs, dlq=ports.dlq, probe=ports.probe, workers=ports.workers, clock=ports.clock,
        metrics=PrometheusMetrics(jobs, ports.dlq, ports.workers, ports.clock), max_attempts=settings.max_attempts,
        max_delay=SQS_MAX_DELAY_SECONDS if cloud else MAX_DELAY_SECONDS, priorities=not cloud,
        max_replays=settings.dlq_max_replays, api_keys=settings.api_key_list, metrics_auth=settings.metrics_auth,
        access_log=settings.access_log, beat_seconds=settings.worker_heartbeat, tracer=tracing))


def configure_consumer(settings: Settings, ports: RedisPorts | None = None) -> list[ForklineHuey]:
    """The Huey instance of each queue this consumer serves (settings.served_queues), pointed at
    Redis with the hooks' ports. With `default`, also the instance of the keyspace from before
    named queues, so jobs old processes enqueued still run."""
    if settings.queue_backend != "redis":
        raise ValueError("the consumer runs Redis jobs; with QUEUE_BACKEND=sqs jobs run in the Lambda")
    ports = ports or build_redis_ports(settings)
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


def build_job_runner(settings: Settings, ports: CloudPorts, metrics: JobMetrics | None = None,
                     delete_finished: bool = False) -> SQSJobRunner:
    """The one SQSJobRunner: the Lambda jobs function's (the event source mapping deletes finished
    messages) and the SQS worker's (`delete_finished`: it deletes them itself)."""
    from adapters.aws.job_runner import SQSJobRunner

    return SQSJobRunner(ports.jobs, ports.dlq, settings.job_timeout, settings.job_backoff_base,
                        settings.job_backoff_max, settings.job_backoff_jitter, metrics, delete_finished)
