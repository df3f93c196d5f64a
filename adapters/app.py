"""The Falcon WSGI app: every route in view, resources thin, I/O injected."""

import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import falcon

from adapters.auth import ApiKeyAuth
from adapters.http_errors import register_error_handlers
from adapters.openapi import openapi_document
from functions import routes
from functions.errors import NotFound
from functions.ports import DeadLetterQueue, HealthProbe, JobQueue

MAX_BODY_BYTES = 1024 * 1024
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class AppDeps:
    jobs: JobQueue
    dlq: DeadLetterQueue
    probe: HealthProbe
    max_attempts: int
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    pid: Callable[[], int] = os.getpid
    started_at: float = field(default_factory=time.time)
    max_body: int = MAX_BODY_BYTES
    api_keys: tuple[str, ...] = ()


def load_json(text: str):
    """json.loads, with a body nested too deeply for it refused as malformed, not a 500."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _job_id(raw: str) -> str:
    if not _JOB_ID.match(raw):
        raise NotFound(f"No job with id {raw[:64]!r}")
    return raw


class BodyLimit:
    """Refuse a body from its Content-Length before any of it is read."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        length = req.content_length
        if length is not None and length > self.max_bytes:
            raise falcon.HTTPContentTooLarge(description=f"The request body exceeds {self.max_bytes} bytes")


class RootResource:
    def __init__(self, deps: AppDeps):
        self.deps = deps

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = routes.welcome(self.deps.pid()).model_dump()


class HealthResource:
    def __init__(self, deps: AppDeps):
        self.deps = deps

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        d = self.deps
        report = routes.health(d.probe, d.started_at, d.clock(), d.pid())
        resp.status = 200 if report.status == "ok" else 503
        resp.media = report.model_dump()


class JobsResource:
    protected = True

    def __init__(self, deps: AppDeps):
        self.deps = deps

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        d = self.deps
        body = req.get_media()
        accepted, created = routes.submit_job(body, d.jobs, d.new_id, d.clock(), d.max_attempts,
                                              req.get_header("Idempotency-Key"))
        resp.status = 202 if created else 200
        resp.location = f"/jobs/{accepted.jobId}"
        resp.media = accepted.model_dump()


class JobResource:
    protected = True

    def __init__(self, deps: AppDeps):
        self.deps = deps

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        resp.media = routes.get_job(_job_id(job_id), self.deps.jobs).model_dump(mode="json")


class QueueStatsResource:
    def __init__(self, deps: AppDeps):
        self.deps = deps

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = routes.queue_stats(self.deps.jobs, self.deps.dlq).model_dump()


class DeadLettersResource:
    protected = True

    def __init__(self, deps: AppDeps):
        self.deps = deps

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = routes.list_dlq(self.deps.dlq, req.get_param("offset"), req.get_param("limit"))
        resp.media = page.model_dump(mode="json")


class ReplayResource:
    protected = True

    def __init__(self, deps: AppDeps):
        self.deps = deps

    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        d = self.deps
        replayed = routes.replay_dlq(_job_id(job_id), d.dlq, d.jobs, d.clock(), d.max_attempts)
        resp.status = 202
        resp.location = f"/jobs/{replayed.jobId}"
        resp.media = replayed.model_dump()


class OpenAPIResource:
    def __init__(self):
        self.document = openapi_document()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document


def create_app(deps: AppDeps) -> falcon.App:
    app = falcon.App(middleware=[BodyLimit(deps.max_body), ApiKeyAuth(deps.api_keys)])
    app.req_options.strip_url_path_trailing_slash = True
    # JSON in, JSON out: a form-encoded body is refused with 415, not parsed.
    app.req_options.media_handlers = falcon.media.Handlers(
        {falcon.MEDIA_JSON: falcon.media.JSONHandler(loads=load_json)})
    app.add_route("/", RootResource(deps))
    app.add_route("/health", HealthResource(deps))
    app.add_route("/jobs", JobsResource(deps))
    app.add_route("/jobs/{job_id}", JobResource(deps))
    app.add_route("/queue/stats", QueueStatsResource(deps))
    app.add_route("/dlq", DeadLettersResource(deps))
    app.add_route("/dlq/{job_id}/replay", ReplayResource(deps))
    app.add_route("/openapi.json", OpenAPIResource())
    register_error_handlers(app)
    return app
