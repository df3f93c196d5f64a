"""Prometheus metrics, added up over every process of one stack (prometheus_client's
multiprocess mode).

The supervisor points PROMETHEUS_MULTIPROC_DIR at DATA_DIR/metrics before anything
imports prometheus_client (`local.cli` calls `use_directory` first), empties it at
start and marks each dead child's files dead; every process writes its own files and
any web worker (GET /metrics) or `forkline worker`'s METRICS_PORT adds them up. Queue
depths are not stored: they are read from the job store when scraped.

Metric children are bound once per label value and kept, so an update is an increment
on an mmap'd file, not a label lookup.
"""

import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from functions import routes
from functions.ports import DeadLetterQueue, JobQueue

log = logging.getLogger("forkline.metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
JOB_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
UNTIMED_ROUTES = frozenset({"/health", "/metrics"})  # probes and scrapes: counted, not in the latency histogram


def use_directory(root: str) -> str:
    """Make `root`/<this pid> this stack's empty metrics directory, and delete those of stacks
    whose supervisor is gone (in the supervisor, before any fork and before prometheus_client
    is imported). Returns the directory: the caller deletes it when it stops."""
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():
        if old.name.isdigit() and not Path(f"/proc/{old.name}").exists():
            shutil.rmtree(old, ignore_errors=True)
    path = base / str(os.getpid())
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    os.environ[ENV] = str(path)
    return str(path)


def multiprocess() -> bool:
    return bool(os.environ.get(ENV))


def mark_dead(pid: int) -> None:
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)


class _Metrics:
    """The metric families, created on first use (after the supervisor chose the directory)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.http_requests = Counter("forkline_http_requests", "HTTP requests answered",
                                     ["route", "method", "status"])
        self.http_duration = Histogram("forkline_http_request_duration_seconds",
                                       "Time to answer an HTTP request (not /health, /metrics)",
                                       ["route", "method"], buckets=HTTP_BUCKETS)
        self.enqueued = Counter("forkline_jobs_enqueued", "Jobs accepted by POST /jobs", ["type"])
        self.started = Counter("forkline_jobs_started", "Job attempts started", ["type"])
        self.completed = Counter("forkline_jobs_completed", "Jobs completed", ["type"])
        self.retried = Counter("forkline_jobs_retried", "Failed attempts scheduled for a retry", ["type"])
        self.dead = Counter("forkline_jobs_dead", "Jobs dead after their last attempt", ["type"])
        self.job_duration = Histogram("forkline_job_duration_seconds", "Time one attempt ran, any outcome",
                                      ["type"], buckets=JOB_BUCKETS)
        self.restarts = Counter("forkline_worker_restarts", "Children replaced by the supervisor",
                                ["role", "cause"])
        self._children: dict[tuple[Any, ...], Any] = {}
        self._requests: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def request_children(self, route: str, method: str, status: int) -> tuple[Any, Any]:
        """(counter, latency histogram or None) of one route, method and status, bound once."""
        key = (route, method, status)
        found = self._requests.get(key)
        if found is None:
            timed = route not in UNTIMED_ROUTES
            found = self._requests[key] = (self.http_requests.labels(route, method, str(status)),
                                           self.http_duration.labels(route, method) if timed else None)
        return found

    def child(self, family: Any, *labels: str) -> Any:
        key = (id(family), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = family.labels(*labels)
        return found


_metrics: _Metrics | None = None


def families() -> _Metrics:
    global _metrics
    if _metrics is None:
        _metrics = _Metrics()
    return _metrics


class QueueDepth:
    """A collector reading the queue's counts at scrape time."""

    def __init__(self, jobs: JobQueue, dlq: DeadLetterQueue):
        self.jobs, self.dlq = jobs, dlq

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("forkline_queue_up", "1 when the queue's counts could be read at this scrape")
        try:
            stats = routes.queue_stats(self.jobs, self.dlq)
        except Exception as exc:  # the job store is down: say so, and leave the depths out
            log.debug("queue depths not read: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("forkline_queue_jobs", "Jobs in the queue by state, read at scrape time",
                                  labels=["state"])
        for state in ("waiting", "active", "delayed", "dlq"):
            depth.add_metric([state], getattr(stats, state))
        yield depth


def exposition(extra: Any | None = None) -> tuple[str, bytes]:
    """Every process's metrics added up (this process's alone outside a supervisor), then the
    families of the collector `extra`, read now."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client import multiprocess as mp

    families()
    registry = REGISTRY
    if multiprocess():
        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)
    body = generate_latest(registry)
    if extra is not None:
        now = CollectorRegistry()
        now.register(extra)
        body += generate_latest(now)
    return CONTENT_TYPE_LATEST, body


class PrometheusMetrics:
    """The Metrics port (functions/ports.py) and the consumer's job counters on prometheus_client."""

    def __init__(self, jobs: JobQueue | None = None, dlq: DeadLetterQueue | None = None):
        self.m = families()
        self.depth = QueueDepth(jobs, dlq) if jobs is not None and dlq is not None else None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        counter, latency = self.m.request_children(route, method, status)
        counter.inc()
        if latency is not None:
            latency.observe(seconds)

    def job_enqueued(self, job_type: str) -> None:
        self.m.child(self.m.enqueued, job_type).inc()

    def job_started(self, job_type: str) -> None:
        self.m.child(self.m.started, job_type).inc()

    def job_finished(self, job_type: str, outcome: str, seconds: float | None) -> None:
        """outcome: completed, retried or dead; `seconds` the attempt ran (None: it did not run)."""
        m = self.m
        m.child(getattr(m, outcome), job_type).inc()
        if seconds is not None:
            m.child(m.job_duration, job_type).observe(seconds)

    def worker_restarted(self, role: str, cause: str) -> None:
        self.m.child(self.m.restarts, role, cause).inc()

    def render(self) -> tuple[str, bytes]:
        return exposition(self.depth)


def serve_metrics(host: str, port: int, jobs: JobQueue, dlq: DeadLetterQueue) -> None:
    """Serve GET /metrics (every process's metrics and the queue depths) on host:port from a
    thread of this process; a port in use is logged, not fatal."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client import multiprocess as mp

    families()
    registry = CollectorRegistry()
    if multiprocess():
        mp.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    registry.register(QueueDepth(jobs, dlq))
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.error("cannot serve metrics on %s:%d: %s", host, port, exc.strerror,
                  extra={"event": "metrics_unavailable", "port": port})
        return
    log.info("metrics on http://%s:%d/metrics", host, port, extra={"event": "metrics_listening", "port": port})
