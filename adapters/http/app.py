"""The Falcon WSGI app: the one table of routes, and `create_app`, which builds the app from it.

The table feeds `add_route`, the API-key middleware (its protected paths) and the
OpenAPI document: a route cannot be served without being documented, or
documented as protected without being protected. Each route names what its resource
is built from: the ports and limits of `AppDeps` it uses, and nothing else.
"""

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import falcon
import orjson

from adapters.http.dashboard import DashboardAssetResource, DashboardResource
from adapters.http.errors import register_error_handlers
from adapters.http.middleware import ApiKeyAuth, BodyLimit, RequestContext
from adapters.http.openapi import (
    FILTER_PARAMETERS,
    IDEMPOTENCY_PARAMETER,
    JOB_ID_PARAMETER,
    PAGE_PARAMETERS,
    QUEUE_PARAMETER,
    openapi_document,
    query_parameters,
)
from adapters.http.operations import Operation, Route
from adapters.http.resources import (
    DeadLetterResource,
    DeadLettersPurgeResource,
    DeadLettersReplayResource,
    DeadLettersResource,
    HealthResource,
    JobPromoteResource,
    JobRecordResource,
    JobResource,
    JobsResource,
    LivenessResource,
    MetricsResource,
    QueueHistoryResource,
    QueuePauseResource,
    QueueStatsResource,
    ReadinessResource,
    ReplayResource,
    RootResource,
    WorkersResource,
)
from functions.limits import MAX_BODY_BYTES, MAX_DELAY_SECONDS
from functions.listing import History, HistoryQuery, JobListQuery, JobPage
from functions.models import (
    DeadJob,
    DeadJobPage,
    Health,
    JobAccepted,
    JobRecord,
    JobRequest,
    Probe,
    PurgeReport,
    PurgeRequest,
    QueueState,
    QueueStats,
    Replayed,
    ReplayReport,
    ReplayRequest,
    Welcome,
    WorkerList,
)
from functions.ports import DeadLetterQueue, HealthProbe, JobQueue, Metrics, Tracer, WorkerRegistry


def random_uuid4_hex() -> str:
    """A job id's unique part: a random (version 4) UUID's 32 hex digits, from the process's own generator
    (seeded from os.urandom, and again in each forked child, by the random module): unique without a
    system call per job (uuid4 reads os.urandom each time). Ids are not secrets: the API key guards them."""
    bits = random.getrandbits(128) & ~(0xF000 << 64 | 0xC000 << 48) | (0x4000 << 64 | 0x8000 << 48)
    return f"{bits:032x}"


@dataclass
class OpenAPIResource:
    document: dict[str, Any]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document


class NoMetrics:
    """Metrics that count nothing (the default for an app built without a Metrics port)."""

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        pass

    def job_enqueued(self, job_type: str) -> None:
        pass

    def render(self) -> tuple[str, bytes]:
        return "text/plain; version=0.0.4; charset=utf-8", b""


@dataclass
class AppDeps:
    """Everything the app does I/O with, injected: ports, clock, ids, pid and limits."""

    jobs: JobQueue
    dlq: DeadLetterQueue
    probe: HealthProbe
    max_attempts: int
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = random_uuid4_hex
    pid: Callable[[], int] = os.getpid
    # Uptime is a duration: read on a monotonic clock, not on `clock` (Redis's, which another host shares).
    uptime_clock: Callable[[], float] = time.monotonic
    started_at: float = field(default_factory=time.monotonic)
    max_body: int = MAX_BODY_BYTES
    api_keys: tuple[str, ...] = ()
    workers: WorkerRegistry | None = None
    beat_seconds: float = 2.0
    metrics: Metrics = field(default_factory=NoMetrics)
    metrics_auth: bool = False  # GET /metrics needs an API key too
    access_log: bool = False
    max_replays: int = 3  # DLQ_MAX_REPLAYS
    max_delay: float = MAX_DELAY_SECONDS  # how far ahead a job may be scheduled (less on SQS)
    priorities: bool = True  # the job queue orders by priority (not SQS)
    tracer: Callable[[], Tracer] | None = None  # this process's tracing (adapters/tracing.py), per request


ROUTES: tuple[Route, ...] = (
    Route("/", lambda d: RootResource(d.pid), (
        Operation("get", "Welcome, and the pid of the serving worker", {200: Welcome}),)),
    Route("/livez", lambda d: LivenessResource(d.pid), (
        Operation("get", "Liveness: this worker answers (no dependency is asked)", {200: Probe}),)),
    Route("/readyz", lambda d: ReadinessResource(d.pid), (
        Operation("get", "Readiness: 503 from the moment this worker begins to drain (Redis is not asked)",
                  {200: Probe, 503: Probe}),)),
    Route("/health", lambda d: HealthResource(d.probe, d.started_at, d.uptime_clock, d.pid), (
        Operation("get", "Health of this worker and its dependencies", {200: Health, 503: Health}),)),
    Route("/jobs", lambda d: JobsResource(d.jobs, d.clock, d.new_id, d.metrics, d.max_attempts, d.max_delay,
                                           d.priorities), (
        Operation("post", "Submit a job", {202: JobAccepted, 200: JobAccepted},
                  (400, 401, 403, 413, 415, 422, 500, 503), parameters=(IDEMPOTENCY_PARAMETER,),
                  body=JobRequest),
        Operation("get", "Jobs by state, queue and type, newest first, paged by cursor", {200: JobPage},
                  (401, 403, 422, 500, 503), parameters=query_parameters(JobListQuery)),
    ), protected=True),
    Route("/jobs/{job_id}", lambda d: JobResource(d.jobs, d.clock), (
        Operation("get", "A job's state and result", {200: JobRecord}, (401, 403, 404, 500, 503),
                  parameters=(JOB_ID_PARAMETER,)),
        Operation("delete", "Cancel a job that has not started (queued, retrying, or pending in the cloud shape)",
                  {200: JobRecord}, (401, 403, 404, 409, 500, 503), parameters=(JOB_ID_PARAMETER,)),
    ), protected=True),
    Route("/jobs/{job_id}/promote", lambda d: JobPromoteResource(d.jobs, d.clock), (
        Operation("post", "Start a scheduled or retrying job now (on SQS: a new message; the delayed one is dropped)",
                  {200: JobRecord}, (401, 403, 404, 409, 500, 503), parameters=(JOB_ID_PARAMETER,)),
    ), protected=True),
    Route("/jobs/{job_id}/record", lambda d: JobRecordResource(d.jobs), (
        Operation("delete", "Remove a completed or cancelled job's record before its retention ends",
                  {204: {}}, (401, 403, 404, 409, 500, 503), parameters=(JOB_ID_PARAMETER,)),
    ), protected=True),
    Route("/queue/stats", lambda d: QueueStatsResource(d.jobs, d.dlq), (
        Operation("get", "Queue counts: the sums over every named queue, then each queue's", {200: QueueStats},
                  (500, 503)),)),
    Route("/queue/history", lambda d: QueueHistoryResource(d.jobs, d.clock), (
        Operation("get", "Accepted, completed, failed and retried jobs per minute (24 h) or hour (7 days)",
                  {200: History}, (401, 403, 422, 500, 503), parameters=query_parameters(HistoryQuery)),
    ), protected=True),
    Route("/queues/{name}/pause", lambda d: QueuePauseResource(d.jobs, paused=True), (
        Operation("post", "Pause a queue: consumers stop claiming from it, jobs are still accepted",
                  {200: QueueState}, (401, 403, 404, 500, 503), parameters=(QUEUE_PARAMETER,)),
    ), protected=True),
    Route("/queues/{name}/resume", lambda d: QueuePauseResource(d.jobs, paused=False), (
        Operation("post", "Resume a paused queue", {200: QueueState}, (401, 403, 404, 500, 503),
                  parameters=(QUEUE_PARAMETER,)),
    ), protected=True),
    Route("/dlq", lambda d: DeadLettersResource(d.dlq), (
        Operation("get", "Dead-letter queue, oldest failure first, filtered", {200: DeadJobPage},
                  (400, 401, 403, 422, 500, 503), parameters=PAGE_PARAMETERS + FILTER_PARAMETERS),
    ), protected=True),
    Route("/dlq/replay", lambda d: DeadLettersReplayResource(d.dlq, d.jobs, d.clock, d.max_attempts, d.max_replays), (
        Operation("post", "Replay up to `limit` matching dead jobs (DLQ_MAX_REPLAYS skips poison jobs)",
                  {200: ReplayReport}, (400, 401, 403, 413, 415, 422, 500, 503), body=ReplayRequest),
    ), protected=True),
    Route("/dlq/purge", lambda d: DeadLettersPurgeResource(d.dlq), (
        Operation("post", "Remove up to 1,000 matching dead jobs; needs \"confirm\": true", {200: PurgeReport},
                  (400, 401, 403, 413, 415, 422, 500, 503), body=PurgeRequest),
    ), protected=True),
    Route("/dlq/{job_id}", lambda d: DeadLetterResource(d.dlq), (
        Operation("get", "One dead job, with its traceback", {200: DeadJob}, (401, 403, 404, 500, 503),
                  parameters=(JOB_ID_PARAMETER,)),
        Operation("delete", "Remove one dead job", {204: {}}, (401, 403, 404, 500, 503),
                  parameters=(JOB_ID_PARAMETER,)),
    ), protected=True),
    Route("/dlq/{job_id}/replay", lambda d: ReplayResource(d.dlq, d.jobs, d.clock, d.max_attempts), (
        Operation("post", "Put a dead job back on the queue", {202: Replayed}, (401, 403, 404, 500, 503),
                  parameters=(JOB_ID_PARAMETER,)),
    ), protected=True),
    Route("/workers", lambda d: WorkersResource(d.workers, d.beat_seconds), (
        Operation("get", "The live consumer processes, from their heartbeats", {200: WorkerList},
                  (401, 403, 500, 503)),
    ), protected=True),
    # Open like /health; with METRICS_AUTH=true it needs an API key (401/403) like the protected routes.
    Route("/metrics", lambda d: MetricsResource(d.metrics), (
        Operation("get", "Prometheus metrics of every process of the stack", {200: {"type": "string"}},
                  (401, 403, 500), media="text/plain"),)),
    Route("/dashboard", lambda d: DashboardResource(), (
        Operation("get", "The dashboard: one page, its data from the routes above", {200: {"type": "string"}},
                  (500,), media="text/html"),)),
    Route("/dashboard/{asset}", lambda d: DashboardAssetResource(), (
        Operation("get", "The dashboard's script and style sheet", {200: {"type": "string"}}, (404, 500),
                  parameters=({"name": "asset", "in": "path", "required": True,
                               "schema": {"type": "string", "enum": ["dashboard.js", "dashboard.css"]}},),
                  media="text/*"),)),
    Route("/openapi.json", lambda d: OpenAPIResource(openapi_document(ROUTES)), (
        Operation("get", "This document", {200: {"type": "object"}}),)),
)


def dump_json(media: Any) -> bytes:
    """orjson, compact; a value orjson does not know (none of the API's models) falls back to str."""
    return orjson.dumps(media, default=str, option=orjson.OPT_NON_STR_KEYS)


def load_json(text: str) -> Any:
    """orjson (strict RFC 8259: no NaN or Infinity); a body nested past 1,024 levels is malformed (400)."""
    return orjson.loads(text)


def create_app(deps: AppDeps) -> falcon.App:
    protected = frozenset(route.path for route in ROUTES if route.protected or
                          (route.path == "/metrics" and deps.metrics_auth))
    middleware: list[Any] = [RequestContext(deps.metrics, deps.access_log, deps.tracer), BodyLimit(deps.max_body),
                             ApiKeyAuth(deps.api_keys, protected)]
    app = falcon.App(middleware=middleware)
    json_handler = falcon.media.JSONHandler(dumps=dump_json, loads=load_json)
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    app.req_options.strip_url_path_trailing_slash = True
    # JSON in, JSON out: a form-encoded body is refused with 415, not parsed.
    app.req_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: json_handler})
    for route in ROUTES:
        resource: Any = route.resource(deps)
        if hasattr(resource, "on_get") and not hasattr(resource, "on_head"):
            resource.on_head = resource.on_get  # HEAD: GET's status and headers; Falcon sends no body
        app.add_route(route.path, resource)
    register_error_handlers(app)
    return app
