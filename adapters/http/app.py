"""The Falcon WSGI app: the one table of routes, and `create_app`, which builds the app from it.

The table feeds `add_route`, the API-key middleware (its protected paths) and the
OpenAPI document: a route cannot be served without being documented, or
documented as protected without being protected.
"""

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
)
from adapters.http.operations import Operation, Route
from adapters.http.resources import (
    AppDeps,
    DeadLetterResource,
    DeadLettersPurgeResource,
    DeadLettersReplayResource,
    DeadLettersResource,
    HealthResource,
    JobResource,
    JobsResource,
    MetricsResource,
    QueuePauseResource,
    QueueResumeResource,
    QueueStatsResource,
    ReplayResource,
    Resource,
    RootResource,
    WorkersResource,
)
from functions.models import (
    DeadJob,
    DeadJobPage,
    Health,
    JobAccepted,
    JobRecord,
    JobRequest,
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


class OpenAPIResource(Resource):
    def __init__(self, deps: AppDeps):
        super().__init__(deps)
        self.document = openapi_document(ROUTES)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document


ROUTES: tuple[Route, ...] = (
    Route("/", RootResource, (Operation("get", "Welcome, and the pid of the serving worker", {200: Welcome}),)),
    Route("/health", HealthResource, (
        Operation("get", "Health of this worker and its dependencies", {200: Health, 503: Health}),)),
    Route("/jobs", JobsResource, (
        Operation("post", "Submit a job", {202: JobAccepted, 200: JobAccepted},
                  (400, 401, 403, 413, 415, 422, 500, 503), parameters=(IDEMPOTENCY_PARAMETER,),
                  body=JobRequest),
    ), protected=True),
    Route("/jobs/{job_id}", JobResource, (
        Operation("get", "A job's state and result", {200: JobRecord}, (401, 403, 404, 500, 503),
                  parameters=(JOB_ID_PARAMETER,)),
        Operation("delete", "Cancel a job that has not started (queued, retrying, or pending in the cloud shape)",
                  {200: JobRecord}, (401, 403, 404, 409, 500, 503), parameters=(JOB_ID_PARAMETER,)),
    ), protected=True),
    Route("/queue/stats", QueueStatsResource, (
        Operation("get", "Queue counts: the sums over every named queue, then each queue's", {200: QueueStats},
                  (500, 503)),)),
    Route("/queues/{name}/pause", QueuePauseResource, (
        Operation("post", "Pause a queue: consumers stop claiming from it, jobs are still accepted",
                  {200: QueueState}, (401, 403, 404, 500, 503), parameters=(QUEUE_PARAMETER,)),
    ), protected=True),
    Route("/queues/{name}/resume", QueueResumeResource, (
        Operation("post", "Resume a paused queue", {200: QueueState}, (401, 403, 404, 500, 503),
                  parameters=(QUEUE_PARAMETER,)),
    ), protected=True),
    Route("/dlq", DeadLettersResource, (
        Operation("get", "Dead-letter queue, oldest failure first, filtered", {200: DeadJobPage},
                  (400, 401, 403, 422, 500, 503), parameters=PAGE_PARAMETERS + FILTER_PARAMETERS),
    ), protected=True),
    Route("/dlq/replay", DeadLettersReplayResource, (
        Operation("post", "Replay up to `limit` matching dead jobs (DLQ_MAX_REPLAYS skips poison jobs)",
                  {200: ReplayReport}, (400, 401, 403, 413, 415, 422, 500, 503), body=ReplayRequest),
    ), protected=True),
    Route("/dlq/purge", DeadLettersPurgeResource, (
        Operation("post", "Remove up to 1,000 matching dead jobs; needs \"confirm\": true", {200: PurgeReport},
                  (400, 401, 403, 413, 415, 422, 500, 503), body=PurgeRequest),
    ), protected=True),
    Route("/dlq/{job_id}", DeadLetterResource, (
        Operation("get", "One dead job, with its traceback", {200: DeadJob}, (401, 403, 404, 500, 503),
                  parameters=(JOB_ID_PARAMETER,)),
        Operation("delete", "Remove one dead job", {204: {}}, (401, 403, 404, 500, 503),
                  parameters=(JOB_ID_PARAMETER,)),
    ), protected=True),
    Route("/dlq/{job_id}/replay", ReplayResource, (
        Operation("post", "Put a dead job back on the queue", {202: Replayed}, (401, 403, 404, 500, 503),
                  parameters=(JOB_ID_PARAMETER,)),
    ), protected=True),
    Route("/workers", WorkersResource, (
        Operation("get", "The live consumer processes, from their heartbeats", {200: WorkerList},
                  (401, 403, 500, 503)),
    ), protected=True),
    # Open like /health; with METRICS_AUTH=true it needs an API key (401/403) like the protected routes.
    Route("/metrics", MetricsResource, (
        Operation("get", "Prometheus metrics of every process of the stack", {200: {"type": "string"}},
                  (401, 403, 500), media="text/plain"),)),
    Route("/dashboard", DashboardResource, (
        Operation("get", "The dashboard: one page, its data from the routes above", {200: {"type": "string"}},
                  (500,), media="text/html"),)),
    Route("/dashboard/{asset}", DashboardAssetResource, (
        Operation("get", "The dashboard's script and style sheet", {200: {"type": "string"}}, (404, 500),
                  parameters=({"name": "asset", "in": "path", "required": True,
                               "schema": {"type": "string", "enum": ["dashboard.js", "dashboard.css"]}},),
                  media="text/*"),)),
    Route("/openapi.json", OpenAPIResource, (Operation("get", "This document", {200: {"type": "object"}}),)),
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
    middleware: list[Any] = [RequestContext(deps.metrics, deps.access_log), BodyLimit(deps.max_body),
                             ApiKeyAuth(deps.api_keys, protected)]
    app = falcon.App(middleware=middleware)
    json_handler = falcon.media.JSONHandler(dumps=dump_json, loads=load_json)
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    app.req_options.strip_url_path_trailing_slash = True
    # JSON in, JSON out: a form-encoded body is refused with 415, not parsed.
    app.req_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: json_handler})
    for route in ROUTES:
        app.add_route(route.path, route.resource(deps))
    register_error_handlers(app)
    return app
