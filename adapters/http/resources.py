"""Thin resources: parse the request, call the pure function, put its answer in `resp.media`.

Each resource holds only the ports and limits it uses; `create_app` (adapters/http/app.py)
hands them out from the app's `AppDeps`.
"""

from collections.abc import Callable
from dataclasses import dataclass

import falcon

from adapters.logs import FastLogger
from functions import dead_letters, listing, routes
from functions.errors import NotFound
from functions.limits import JOB_ID
from functions.ports import DeadLetterQueue, HealthProbe, JobQueue, Metrics, WorkerRegistry
from functions.trace_context import TraceContext

jobs_log = FastLogger("forkline.jobs")


def span_of(req: falcon.Request) -> TraceContext | None:
    """The request's span (the middleware's), the parent of the attempts of the jobs it submits or replays."""
    span = req.context.get("span")
    return span.context() if span is not None else None


def job_id_param(raw: str) -> str:
    if not JOB_ID.match(raw):
        raise NotFound(f"No job with id {raw[:64]!r}")
    return raw


@dataclass
class RootResource:
    pid: Callable[[], int]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = routes.welcome(self.pid()).model_dump()


# Set by the server around the app (local/runtime/web_worker.py) while this worker drains; absent elsewhere.
DRAINING = "forkline.draining"


@dataclass
class LivenessResource:
    pid: Callable[[], int]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = routes.liveness(self.pid()).model_dump()


@dataclass
class ReadinessResource:
    pid: Callable[[], int]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        status, probe = routes.readiness(bool(req.env.get(DRAINING)), self.pid())
        resp.status, resp.media = status, probe.model_dump()


@dataclass
class HealthResource:
    probe: HealthProbe
    started_at: float
    # Uptime is a duration: read on a monotonic clock, not on the app's clock (Redis's, which another host shares).
    uptime_clock: Callable[[], float]
    pid: Callable[[], int]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        report = routes.health(self.probe, self.started_at, self.uptime_clock(), self.pid())
        resp.status = 200 if report.status == "ok" else 503
        resp.media = report.model_dump()


@dataclass
class JobsResource:
    jobs: JobQueue
    clock: Callable[[], float]
    new_id: Callable[[], str]
    metrics: Metrics
    max_attempts: int
    max_delay: float  # how far ahead a job may be scheduled (less on SQS)
    priorities: bool  # the job queue orders by priority (not SQS)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.get_media()
        accepted, created = routes.submit_job(body, self.jobs, self.new_id, self.clock(), self.max_attempts,
                                              req.get_header("Idempotency-Key"), req.context.get("request_id"),
                                              self.max_delay, self.priorities, span_of(req))
        if created:
            job_type = routes.job_type_of(body)
            jobs_log.info("job accepted", event="job_accepted", jobId=accepted.jobId, type=job_type)
            self.metrics.job_enqueued(job_type)
        resp.status = 202 if created else 200
        resp.location = f"/jobs/{accepted.jobId}"
        resp.content_type = falcon.MEDIA_JSON
        resp.data = accepted.model_dump_json().encode()  # one encode, in pydantic's Rust

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = {name: req.get_param(name) for name in ("state", "queue", "type", "limit", "cursor")}
        resp.media = listing.list_jobs(params, self.jobs).model_dump(mode="json")


@dataclass
class QueueHistoryResource:
    jobs: JobQueue
    clock: Callable[[], float]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = {name: req.get_param(name) for name in ("queue", "since", "until", "step")}
        resp.media = listing.job_history(params, self.jobs, self.clock()).model_dump(mode="json")


@dataclass
class JobResource:
    jobs: JobQueue
    clock: Callable[[], float]

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        resp.media = routes.get_job(job_id_param(job_id), self.jobs).model_dump(mode="json")

    def on_delete(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        resp.media = routes.cancel_job(job_id_param(job_id), self.jobs, self.clock()).model_dump(mode="json")


@dataclass
class JobPromoteResource:
    jobs: JobQueue
    clock: Callable[[], float]

    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        resp.media = routes.promote_job(job_id_param(job_id), self.jobs, self.clock()).model_dump(mode="json")


@dataclass
class JobRecordResource:
    jobs: JobQueue

    def on_delete(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        routes.forget_job(job_id_param(job_id), self.jobs)
        resp.status = 204


@dataclass
class QueueStatsResource:
    jobs: JobQueue
    dlq: DeadLetterQueue

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = routes.queue_stats(self.jobs, self.dlq).model_dump()


@dataclass
class QueuePauseResource:
    jobs: JobQueue
    paused: bool  # what POST sets: True under /pause, False under /resume

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = routes.set_paused(name, self.paused, self.jobs).model_dump()


FILTER_PARAMS = ("type", "queue", "errorContains", "failedAfter", "failedBefore")


@dataclass
class DeadLettersResource:
    dlq: DeadLetterQueue

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        filters = {name: req.get_param(name) for name in FILTER_PARAMS}
        page = routes.list_dlq(self.dlq, req.get_param("offset"), req.get_param("limit"), filters)
        resp.media = page.model_dump(mode="json")


@dataclass
class DeadLetterResource:
    dlq: DeadLetterQueue

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        resp.media = dead_letters.get_dead(self.dlq, job_id_param(job_id)).model_dump(mode="json")

    def on_delete(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        dead_letters.delete_dead(self.dlq, job_id_param(job_id))
        resp.status = 204


@dataclass
class DeadLettersReplayResource:
    dlq: DeadLetterQueue
    jobs: JobQueue
    clock: Callable[[], float]
    max_attempts: int
    max_replays: int  # DLQ_MAX_REPLAYS

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        report = dead_letters.replay_matching(req.get_media(default_when_empty=None), self.dlq, self.jobs, self.clock(),
                                              self.max_attempts, self.max_replays, req.context.get("request_id"),
                                              span_of(req))
        resp.media = report.model_dump()


@dataclass
class DeadLettersPurgeResource:
    dlq: DeadLetterQueue

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = dead_letters.purge_matching(req.get_media(default_when_empty=None), self.dlq).model_dump()


@dataclass
class WorkersResource:
    workers: WorkerRegistry | None
    beat_seconds: float

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = routes.list_workers(self.workers, self.beat_seconds).model_dump()


@dataclass
class MetricsResource:
    metrics: Metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type, resp.data = self.metrics.render()


@dataclass
class ReplayResource:
    dlq: DeadLetterQueue
    jobs: JobQueue
    clock: Callable[[], float]
    max_attempts: int

    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        replayed = dead_letters.replay_one(job_id_param(job_id), self.dlq, self.jobs, self.clock(), self.max_attempts,
                                           req.context.get("request_id"), span_of(req))
        resp.status = 202
        resp.location = f"/jobs/{replayed.jobId}"
        resp.media = replayed.model_dump()
