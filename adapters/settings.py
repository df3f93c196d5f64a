"""Configuration from the environment and an optional .env file."""

import os
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from functions.jobs import declared_queues, queue_of_type
from functions.periodic import Periodic, parse_periodic

# What REDIS_URL may start with: each has its connection class behind the breaker
# (adapters/redis/breaker.py GUARDED_BY_SCHEME).
REDIS_SCHEMES = ("redis", "rediss", "unix")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    port: int = Field(3000, ge=1, le=65535)
    host: str = "0.0.0.0"
    redis_url: str | None = None
    redis_sentinels: str = Field("", description="`host:port,...` of Redis Sentinels (with REDIS_SENTINEL_MASTER); "
                                                 "REDIS_URL then gives only the password, database and TLS")
    redis_sentinel_master: str = Field("", description="the master name the sentinels monitor")
    redis_cluster: bool = Field(False, description="REDIS_URL names seed nodes of a Redis Cluster")
    redis_replica_acks: int = Field(0, ge=0, le=16, description="replicas that must have a submit, replay or cancel "
                                                                "before it is answered (WAIT); 0 = off")
    redis_replica_ack_timeout_ms: int = Field(100, ge=1, le=10000, description="how long to wait for them; then 503")
    redis_appendfsync: Literal["everysec", "always"] = Field(
        "everysec", description="the embedded Redis's AOF fsync: `always` survives a machine crash, slower")
    forkline_allow_eviction: bool = Field(False, description="start even when Redis's maxmemory-policy may evict "
                                                             "keys (jobs would be lost silently)")
    web_concurrency: int | None = Field(None, ge=1, le=256)
    worker_concurrency: int = Field(5, ge=1, le=256)
    consumer_processes: int | None = Field(None, ge=1, le=64)
    consumer_nice: int = Field(10, ge=0, le=19, description="niceness of consumer processes: HTTP first when "
                                                            "both compete for the cores")
    consumer_queues: str = Field("", description="comma-separated queues a consumer serves; empty = all declared")
    queue_concurrency: str = Field("", description="per-queue threads over WORKER_CONCURRENCY: `slow=2,email=10`")
    priority_aging: float = Field(10.0, gt=0, description="seconds of waiting worth one priority level")
    periodic_jobs: str = Field("", description="`name=type@schedule[@payload]; ...`: seconds or a crontab (UTC)")
    job_max_retries: int = Field(3, ge=0, le=100)
    job_backoff_base: float = Field(2.0, ge=0)
    job_backoff_max: float = Field(300.0, ge=0, description="no retry waits longer (seconds)")
    job_backoff_jitter: float = Field(0.0, ge=0, le=1, description="spread each delay by +/- this fraction")
    job_lease: float = Field(30.0, gt=0, description="seconds a claimed job stays invisible before it is re-queued")
    job_timeout: float = Field(300.0, gt=0, description="seconds one attempt may run before it is stopped")
    job_retention: int = Field(86400, ge=1, description="seconds completed job records are kept")
    queue_message_format: int = Field(3, ge=2, le=3, description="the newest queue message format web workers "
                                      "write: 2 while consumers older than it still run (a rolling deploy)")
    graceful_timeout: float = Field(30.0, ge=0)
    web_timeout: float = Field(30.0, gt=0, description="seconds one request may run before its worker is replaced")
    web_max_requests: int = Field(0, ge=0, description="requests after which an HTTP worker is replaced; 0 = never")
    web_max_requests_jitter: int | None = Field(None, ge=0, description="random extra requests; default 10%")
    web_max_rss_mb: int = Field(512, description="resident MB past which an HTTP worker is replaced; 0 = off")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_dir: str = "logs"
    log_retention_days: int = Field(14, ge=1)
    data_dir: str = ".forkline"
    dlq_backend: Literal["redis", "sqs"] = "redis"
    dlq_sqs_queue_url: str | None = None
    queue_backend: Literal["redis", "sqs"] = "redis"
    jobs_sqs_queue_url: str | None = Field(None, description="the `default` queue's SQS queue (QUEUE_BACKEND=sqs)")
    jobs_sqs_queue_urls: str = Field("", description="the other named queues' SQS queues: `slow=<url>,...`")
    jobs_event_sources: str = Field("", description="Lambda event source mapping ids by queue, `default=<uuid>,...`: "
                                                    "pausing a queue disables its mapping")
    job_store: Literal["redis", "dynamodb"] = "redis"
    cloud_emulation: bool = Field(False, description="`forkline run` emulates the cloud shape (as `--cloud`)")
    jobs_table: str | None = Field(None, description="the DynamoDB table of job records (JOB_STORE=dynamodb)")
    api_keys: str = Field("", description="comma-separated API keys; empty = no authentication")
    access_log: bool = Field(False, description="one log line per HTTP request")
    dlq_max_replays: int = Field(3, ge=0, le=1000, description="a bulk replay skips jobs replayed this many times")
    metrics_auth: bool = Field(False, description="GET /metrics needs an API key")
    metrics_port: int = Field(9464, ge=0, le=65535,
                              description="where `forkline worker` alone serves its metrics; 0 = nowhere")
    worker_heartbeat: float = Field(2.0, gt=0, le=60, description="seconds between a consumer's heartbeats")
    app_factory: str = Field("adapters.wiring:build_app",
                             description="module:function returning the WSGI app from settings")

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("web_max_rss_mb")
    @classmethod
    def _rss_floor(cls, value: int) -> int:
        # Below a fresh worker's own size (~50 MB) every worker would retire at once, in a loop.
        if value != 0 and value < 128:
            raise ValueError("must be 0 (off) or at least 128")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinel_addresses(cls, value: str) -> str:
        for item in _names(value):
            host, colon, port = item.rpartition(":")
            if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{item!r}: give host:port")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and value.split("://", 1)[0] not in REDIS_SCHEMES:
            raise ValueError(f"{value.split('://', 1)[0]!r}: give redis://, rediss:// (TLS) or unix:// (a socket path)")
        return value

    @field_validator("consumer_queues")
    @classmethod
    def _known_queues(cls, value: str) -> str:
        unknown = [q for q in _names(value) if q not in declared_queues()]
        if unknown:
            raise ValueError(f"unknown queue {unknown[0]!r} (declared: {', '.join(declared_queues())})")
        return value

    @field_validator("periodic_jobs")
    @classmethod
    def _schedules(cls, value: str) -> str:
        parse_periodic(value)
        return value

    @field_validator("queue_concurrency")
    @classmethod
    def _per_queue_threads(cls, value: str) -> str:
        for item in _names(value):
            queue, equals, threads = item.partition("=")
            if queue not in declared_queues():
                raise ValueError(f"unknown queue {queue!r} (declared: {', '.join(declared_queues())})")
            if not equals or not threads.strip().isdigit() or not 1 <= int(threads) <= 256:
                raise ValueError(f"{item!r}: give <queue>=<threads>, threads 1-256")
        return value

    @model_validator(mode="after")
    def _queue_urls(self) -> "Settings":
        if self.dlq_backend == "sqs" and not self.dlq_sqs_queue_url:
            raise ValueError("DLQ_BACKEND=sqs needs DLQ_SQS_QUEUE_URL")
        if self.queue_backend == "sqs" and not self.jobs_sqs_queue_url:
            raise ValueError("QUEUE_BACKEND=sqs needs JOBS_SQS_QUEUE_URL")
        if (self.queue_backend == "sqs") != (self.job_store == "dynamodb"):
            raise ValueError("QUEUE_BACKEND=sqs goes with JOB_STORE=dynamodb, and redis with redis "
                             "(the two supported pairings)")
        if bool(self.redis_sentinels) != bool(self.redis_sentinel_master):
            raise ValueError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together")
        if self.redis_cluster and (self.redis_sentinels or not self.redis_url):
            raise ValueError("REDIS_CLUSTER=true needs REDIS_URL (a seed node), not REDIS_SENTINELS")
        if self.redis_cluster and self.redis_replica_acks:
            raise ValueError("REDIS_REPLICA_ACKS is not supported with REDIS_CLUSTER=true: use a primary with "
                             "replicas, or Sentinel")
        if self.job_store == "dynamodb" and not self.jobs_table:
            raise ValueError("JOB_STORE=dynamodb needs JOBS_TABLE")
        if self.queue_backend == "sqs":
            missing = [q for q in declared_queues() if q not in self.sqs_queue_urls]
            if missing:
                raise ValueError(f"QUEUE_BACKEND=sqs needs an SQS queue for each named queue: add "
                                 f"{missing[0]}=<url> to JOBS_SQS_QUEUE_URLS")
        return self

    @property
    def web_workers(self) -> int:
        # One more than the cores: a worker waiting on its Redis round trip leaves its core to the extra one.
        return self.web_concurrency or (os.cpu_count() or 1) + 1

    @property
    def consumers(self) -> int:
        # One per core: one process's threads share one GIL (~0.8 of a core on a drain), a second one
        # drains 1.7x as fast on 2 cores (docs/performance.md).
        return self.consumer_processes or os.cpu_count() or 1

    @property
    def max_attempts(self) -> int:
        return self.job_max_retries + 1

    @property
    def sqs_queue_urls(self) -> dict[str, str]:
        """Queue name -> its SQS queue URL (QUEUE_BACKEND=sqs)."""
        urls = _pairs(self.jobs_sqs_queue_urls)
        return {"default": self.jobs_sqs_queue_url, **urls} if self.jobs_sqs_queue_url else urls

    @property
    def event_sources(self) -> dict[str, str]:
        """Queue name -> the id of the Lambda event source mapping that consumes it."""
        return _pairs(self.jobs_event_sources)

    @property
    def served_queues(self) -> list[str]:
        """The queues a consumer process serves (CONSUMER_QUEUES, else every declared queue)."""
        return [q for q in declared_queues() if q in _names(self.consumer_queues)] or declared_queues()

    @property
    def periodic_schedules(self) -> list[Periodic]:
        """The periodic jobs whose queue this process's consumers serve."""
        return [p for p in parse_periodic(self.periodic_jobs) if queue_of_type(p.type) in self.served_queues]

    def concurrency_of(self, queue: str) -> int:
        """Worker threads of one queue in a consumer process."""
        threads = _pairs(self.queue_concurrency)
        return int(threads[queue]) if queue in threads else self.worker_concurrency

    @property
    def sentinel_addresses(self) -> tuple[tuple[str, int], ...]:
        return tuple((host, int(port)) for host, _, port in (i.rpartition(":") for i in _names(self.redis_sentinels)))

    @property
    def api_key_list(self) -> tuple[str, ...]:
        return tuple(key.strip() for key in self.api_keys.split(",") if key.strip())


def _names(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _pairs(value: str) -> dict[str, str]:
    """`a=1,b=2` as {"a": "1", "b": "2"}."""
    return {name.strip(): found.strip() for name, _, found in (item.partition("=") for item in _names(value))}


class SettingsError(Exception):
    """One line naming the variable that is wrong."""


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; `overrides` (a command's options) win over it, validated alike."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        if not first["loc"]:  # a rule across variables
            raise SettingsError(f"invalid settings: {first['msg'].removeprefix('Value error, ')}") from None
        name = str(first["loc"][0]).upper()
        raise SettingsError(f"invalid setting {name}={first.get('input')!r}: {first['msg']}") from None
