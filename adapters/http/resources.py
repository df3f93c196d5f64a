"""Thin resources: parse the request, call the pure function, put its answer in `resp.media`."""

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import falcon

from adapters.logs import FastLogger
from functions import dead_letters, routes
from functions.errors import NotFound
from functions.limits import JOB_ID, MAX_BODY_BYTES, MAX_DELAY_SECONDS
from functions.ports import DeadLetterQueue, HealthProbe, JobQueue, Metrics, WorkerRegistry

jobs_log = FastLogger("forkline.jobs")


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
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
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


def job_id_param(raw: str) -> str:
    if not JOB_ID.match(raw):
        raise NotFound(f"No job with id {raw[:64]!r}")
    return raw


class Resource:
    def __init__(self, deps: AppDeps):
        self.deps = deps


class RootResource(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = routes.welcome(self.deps.pid()).model_dump()


class HealthResource(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        d = self.deps
        report = routes.health(d.probe, d.started_at, d.uptime_clock(), d.pid())
        resp.status = 200 if report.status == "ok" else 503
        resp.media = report.model_dump()


class JobsResource(Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        d = self.deps
        body = req.get_media()
        accepted, created = routes.submit_job(body, d.jobs, d.new_id, d.clock(), d.max_attempts,
                                              req.get_header("Idempotency-Key"), req.context.get("request_id"),
                                              d.max_delay, d.priorities)
        if created:
            job_type = routes.job_type_of(body)
            jobs_log.info("job accepted", event="job_accepted", jobId=accepted.jobId, type=job_type)
            d.metrics.job_enqueued(job_type)
        resp.status = 202 if created else 200
        resp.location = f"/jobs/{accepted.jobId}"
        resp.media = accepted.model_dump()


class JobResource(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        resp.media = routes.get_job(job_id_param(job_id), self.deps.jobs).model_dump(mode="json")

    def on_delete(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        resp.media = routes.cancel_job(job_id_param(job_id), self.deps.jobs, self.deps.clock()).model_dump(mode="json")


class QueueStatsResource(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = routes.queue_stats(self.deps.jobs, self.deps.dlq).model_dump()


class QueuePauseResource(Resource):
    paused = True

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = routes.set_paused(name, self.paused, self.deps.jobs).model_dump()


class QueueResumeResource(QueuePauseResource):
    paused = False


FILTER_PARAMS = ("type", "queue", "errorContains", "failedAfter", "failedBefore")


class DeadLettersResource(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        filters = {name: req.get_param(name) for name in FILTER_PARAMS}
        page = routes.list_dlq(self.deps.dlq, req.get_param("offset"), req.get_param("limit"), filters)
        resp.media = page.model_dump(mode="json")


class DeadLetterResource(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        resp.media = dead_letters.get_dead(self.deps.dlq, job_id_param(job_id)).model_dump(mode="json")

    def on_delete(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        dead_letters.delete_dead(self.deps.dlq, job_id_param(job_id))
        resp.status = 204


class DeadLettersReplayResource(Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        d = self.deps
        report = dead_letters.replay_matching(req.get_media(default_when_empty=None), d.dlq, d.jobs, d.clock(),
                                              d.max_attempts, d.max_replays, req.context.get("request_id"))
        resp.media = report.model_dump()


class DeadLettersPurgeResource(Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = dead_letters.purge_matching(req.get_media(default_when_empty=None), self.deps.dlq).model_dump()


class WorkersResource(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = routes.list_workers(self.deps.workers, self.deps.beat_seconds).model_dump()


class MetricsResource(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type, resp.data = self.deps.metrics.render()


class ReplayResource(Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        d = self.deps
        replayed = dead_letters.replay_one(job_id_param(job_id), d.dlq, d.jobs, d.clock(), d.max_attempts,
                                     req.context.get("request_id"))
        resp.status = 202
        resp.location = f"/jobs/{replayed.jobId}"
        resp.media = replayed.model_dump()
