"""Prometheus metrics, added up over every process of one stack (prometheus_client's
multiprocess mode).

The supervisor points PROMETHEUS_MULTIPROC_DIR at DATA_DIR/metrics before anything
imports prometheus_client (`local.commands.cli` calls `use_directory` first), empties it at
start and marks each dead child's files dead; every process writes its own files and
any web worker (GET /metrics) or `forkline worker`'s METRICS_PORT adds them up. Queue
depths, the oldest waiting job and the consumers are not stored: they are read at each scrape
(adapters/queue_gauges.py).

Requests and jobs are added up in each process's memory and added to the shared files at
most a second later (by a flusher thread, at a scrape of that worker, when the process
stops): the mmap writes of one request cost more than its id and its counting together.
A SIGKILLed process's last second of counts is lost to the metrics. Adding a tally to a
histogram uses three private attributes of prometheus_client (`_upper_bounds`, a child's
`_buckets` and `_sum`); tests/adapters/test_metrics.py checks they are still there.
"""

import bisect
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.queue_gauges import QueueGauges
from functions.jobs import queue_of_type
from functions.ports import DeadLetterQueue, JobQueue, WorkerRegistry

log = logging.getLogger("forkline.metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
JOB_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
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
        job = ["queue", "type"]
        self.enqueued = Counter("forkline_jobs_enqueued", "Jobs accepted by POST /jobs", job)
        self.started = Counter("forkline_jobs_started", "Job attempts started", job)
        self.completed = Counter("forkline_jobs_completed", "Jobs completed", job)
        self.retried = Counter("forkline_jobs_retried", "Failed attempts scheduled for a retry", job)
        self.dead = Counter("forkline_jobs_dead", "Jobs dead after their last attempt", job)
        self.job_duration = Histogram("forkline_job_duration_seconds", "Time one attempt ran, any outcome",
                                      job, buckets=JOB_BUCKETS)
        self.job_wait = Histogram("forkline_job_wait_seconds", "Time in queue: from when a job became claimable "
                                  "(queued, or due: a delayed job or a retry) to the start of its attempt", ["queue"],
                                  buckets=WAIT_BUCKETS)
        self.restarts = Counter("forkline_worker_restarts", "Children replaced by the supervisor",
                                ["role", "cause"])
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, family: Any, *labels: str) -> Any:
        key = (id(family), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = family.labels(*labels)
        return found


_metrics: _Metrics | None = None


class Tally:
    """Counts and observations added up in this process's memory, then added to the shared
    metrics by `flush` (a flusher thread each second, a scrape, the process stopping). The
    flush only touches the few distinct label sets, so it never holds the GIL for long."""

    FLUSH_SECONDS = 1.0

    def __init__(self) -> None:
        self.lock = threading.Lock()  # consumers count from several threads
        self.counts: dict[tuple[Any, tuple[str, ...]], int] = {}
        self.observed: dict[tuple[Any, tuple[str, ...]], list[float]] = {}  # bucket counts, then the sum
        self.flusher: threading.Thread | None = None

    def add(self, counter: Any, labels: tuple[str, ...], histogram: Any = None, hist_labels: tuple[str, ...] = (),
            seconds: float = 0.0) -> None:
        """Count one in `counter`; with `histogram`, observe `seconds` in it too."""
        if self.flusher is None:
            self.flusher = threading.Thread(target=self._flush_forever, name="metrics-flush", daemon=True)
            self.flusher.start()  # on first use, in the process that counts: a thread does not survive a fork
        with self.lock:
            counts = self.counts
            key = (counter, labels)
            counts[key] = counts.get(key, 0) + 1
            if histogram is not None:
                bounds = histogram._upper_bounds
                tally = self.observed.get((histogram, hist_labels))
                if tally is None:
                    tally = self.observed[(histogram, hist_labels)] = [0.0] * (len(bounds) + 1)
                tally[bisect.bisect_left(bounds, seconds)] += 1
                tally[-1] += seconds

    def _flush_forever(self) -> None:
        while True:
            threading.Event().wait(self.FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        with self.lock:
            counts, self.counts = self.counts, {}
            observed, self.observed = self.observed, {}
        m = families()
        for (counter, labels), n in counts.items():
            m.child(counter, *labels).inc(n)
        for (histogram, labels), tally in observed.items():
            child = m.child(histogram, *labels)
            for bucket, hits in zip(child._buckets, tally, strict=False):
                if hits:
                    bucket.inc(hits)
            child._sum.inc(tally[-1])


_tally = Tally()


def flush_all() -> None:
    """Add what this process tallied to the shared metrics (a worker about to exit)."""
    _tally.flush()


def families() -> _Metrics:
    global _metrics
    if _metrics is None:
        _metrics = _Metrics()
    return _metrics


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
    """The Metrics port (functions/ports.py) and the consumer's job counters on prometheus_client;
    with the job store's ports, the gauges read at each scrape too."""

    def __init__(self, jobs: JobQueue | None = None, dlq: DeadLetterQueue | None = None,
                 workers: WorkerRegistry | None = None, clock: Callable[[], float] = time.time):
        self.m = families()
        self.depth = QueueGauges(jobs, dlq, workers, clock) if jobs is not None and dlq is not None else None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        m = self.m
        if route in UNTIMED_ROUTES:
            _tally.add(m.http_requests, (route, method, str(status)))
        else:
            _tally.add(m.http_requests, (route, method, str(status)), m.http_duration, (route, method), seconds)

    def job_enqueued(self, job_type: str) -> None:
        _tally.add(self.m.enqueued, (queue_of_type(job_type), job_type))

    def job_started(self, job_type: str, waited: float | None = None) -> None:
        queue = queue_of_type(job_type)
        if waited is None:
            _tally.add(self.m.started, (queue, job_type))
        else:
            _tally.add(self.m.started, (queue, job_type), self.m.job_wait, (queue,), waited)

    def job_finished(self, job_type: str, outcome: str, seconds: float | None) -> None:
        """outcome: completed, retried or dead; `seconds` the attempt ran (None: it did not run)."""
        m, labels = self.m, (queue_of_type(job_type), job_type)
        if seconds is None:
            _tally.add(getattr(m, outcome), labels)
        else:
            _tally.add(getattr(m, outcome), labels, m.job_duration, labels, seconds)

    def worker_restarted(self, role: str, cause: str) -> None:
        self.m.child(self.m.restarts, role, cause).inc()

    def render(self) -> tuple[str, bytes]:
        _tally.flush()  # this worker's own counts up to now
        return exposition(self.depth)


def serve_metrics(host: str, port: int, jobs: JobQueue, dlq: DeadLetterQueue, workers: WorkerRegistry | None = None,
                  clock: Callable[[], float] = time.time) -> None:
    """Serve GET /metrics (every process's metrics and the gauges read at scrape time) on host:port
    from a thread of this process; a port in use is logged, not fatal."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client import multiprocess as mp

    families()
    registry = CollectorRegistry()
    if multiprocess():
        mp.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    registry.register(QueueGauges(jobs, dlq, workers, clock))
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.error("cannot serve metrics on %s:%d: %s", host, port, exc.strerror,
                  extra={"event": "metrics_unavailable", "port": port})
        return
    log.info("metrics on http://%s:%d/metrics", host, port, extra={"event": "metrics_listening", "port": port})
