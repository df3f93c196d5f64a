"""Pydantic models of the API's inputs and outputs."""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from functions.jobs import DEFAULT_PRIORITY, DEFAULT_QUEUE, queue_of


def job_queue(job_id: str) -> str:
    """The queue of a job, from its id (ids from before named queues are `default` jobs)."""
    return queue_of(job_id) or DEFAULT_QUEUE


class Welcome(BaseModel):
    message: str
    workerPID: int


class Health(BaseModel):
    status: str = Field(description="ok, or degraded when a dependency is down")
    uptime: float = Field(description="seconds since this worker started")
    workerPID: int
    dependencies: dict[str, str] = Field(description="dependency name -> up/down")


class Probe(BaseModel):
    status: str = Field(description="alive; ready, or draining (503) once this worker has begun to stop")
    workerPID: int


class JobRequest(BaseModel):
    """Body of POST /jobs. Fields other than `type` form the job's payload."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="message", max_length=64, description="registered job type")
    delay: float | None = Field(None, ge=0, description="seconds to wait before the job may run (up to 30 days)")
    priority: int | None = Field(None, ge=0, le=9, description="0-9, higher first (default 5); waiting raises it "
                                                               "one level per PRIORITY_AGING seconds")
    runAt: float | None = Field(None, ge=0, description="Unix seconds before which the job does not run (up to 30 "
                                                         "days ahead, at most a minute in the past)")


class JobState(StrEnum):
    pending = "pending"  # accepted; its queue message not confirmed sent yet (the SQS + DynamoDB store)
    queued = "queued"
    scheduled = "scheduled"  # waits for its runAt (POST /jobs with delay or runAt)
    active = "active"
    retrying = "retrying"
    completed = "completed"
    dead = "dead"
    cancelled = "cancelled"  # cancelled before it started (DELETE /jobs/{id})


CANCELLABLE = frozenset({JobState.pending, JobState.queued, JobState.scheduled, JobState.retrying})  # not started
FORGETTABLE = frozenset({JobState.completed, JobState.cancelled})  # finished, and no DLQ entry holds the record
PROMOTABLE = frozenset({JobState.scheduled, JobState.retrying})  # waiting for a time: may start now instead


class AttemptError(BaseModel):
    """The error of one failed attempt."""

    attempt: int
    error: str = Field(description="<exception type>: <message>")
    at: float = Field(description="when the attempt failed (Unix seconds)")


class JobRecord(BaseModel):
    """A job as stored and as returned by GET /jobs/{id}."""

    id: str
    type: str
    payload: dict[str, Any]
    state: JobState
    attempts: int = 0
    maxAttempts: int
    lastError: str | None = None
    errors: list[AttemptError] = Field(default_factory=list, description="each failed attempt's error, oldest first")
    result: Any = None
    createdAt: float
    updatedAt: float
    nextAttemptAt: float | None = None
    runAt: float | None = Field(None, description="a scheduled job does not run before this (Unix seconds)")
    finishedAt: float | None = None
    dlqPending: bool = Field(False, description="dead, and its DLQ entry not written yet (retried until it is)")
    requestId: str | None = Field(None, description="X-Request-ID of the request that submitted it")
    replays: int = Field(0, description="times this job was replayed from the dead-letter queue")
    priority: int = Field(5, description="0-9, higher first")
    retention: int | None = Field(None, description="seconds the record is kept once finished, when its job type "
                                                    "sets its own (else JOB_RETENTION)")
    progress: float | None = Field(None, ge=0, le=1, description="how far the job has got (0-1), as it last "
                                                                 "reported (ctx.progress)")
    progressNote: str | None = Field(None, description="the note of its last progress report")
    promotions: int = Field(0, description="times it was started early (POST /jobs/{id}/promote)")
    traceparent: str | None = Field(None, description="W3C trace context of the request that submitted it (its "
                                                      "span): each attempt runs as a child of that span")
    tracestate: str | None = Field(None, description="the request's tracestate, carried on to the attempts")

    @computed_field(description="the named queue it waits in (from its id)")  # type: ignore[prop-decorator]
    @property
    def queue(self) -> str:
        return job_queue(self.id)

    @computed_field(description="the trace it belongs to (from traceparent)")  # type: ignore[prop-decorator]
    @property
    def traceId(self) -> str | None:  # noqa: N802 (the API's field name)
        return self.traceparent.split("-")[1] if self.traceparent and self.traceparent.count("-") >= 3 else None

    def ready_at(self) -> float:
        """When a waiting job became claimable: the latest of its last state change (queued, given back,
        promoted), its runAt (a scheduled job) and its nextAttemptAt (a retry). The time in queue is
        measured from here (adapters/redis/lua/claim.lua and oldest.lua read the same three fields)."""
        return max(self.updatedAt, self.runAt or 0.0, self.nextAttemptAt or 0.0)


class JobAccepted(BaseModel):
    jobId: str
    status: str = Field("queued", description="queued, or scheduled (with delay or runAt)")


class QueueCounts(BaseModel):
    """One named queue's figures."""

    waiting: int
    active: int
    completed: int = Field(description="jobs completed since the queue was created")
    failed: int = Field(description="jobs moved to the dead-letter queue since the queue was created")
    delayed: int = Field(description="jobs waiting for a retry")
    dlq: int | None = Field(description="its jobs in the dead-letter queue, including dlqPending; null where one "
                                        "DLQ takes every queue's dead jobs (the SQS DLQ): see the top-level dlq")
    dlqPending: int = Field(0, description="dead jobs whose DLQ entry is not written yet (a failed put, retried)")
    paused: bool = Field(False, description="consumers claim nothing from it (POST /queues/{name}/pause)")


class QueueStats(BaseModel):
    """The template's figures, summed over every named queue, then each queue's own."""

    waiting: int
    active: int
    completed: int = Field(description="jobs completed since the queue was created")
    failed: int = Field(description="jobs moved to the dead-letter queue since the queue was created")
    delayed: int = Field(description="jobs waiting for a retry")
    dlq: int = Field(description="jobs currently in the dead-letter queue, including dlqPending")
    dlqPending: int = Field(0, description="dead jobs whose DLQ entry is not written yet (a failed put, retried)")
    queues: dict[str, QueueCounts] = Field(default_factory=dict, description="queue name -> its figures")


class QueueState(BaseModel):
    """Answer of POST /queues/{name}/pause and /resume."""

    queue: str
    paused: bool


class WorkerInfo(BaseModel):
    """A live consumer process, as its last heartbeat described it."""

    id: str = Field(description="host:pid")
    host: str
    pid: int
    startedAt: float
    queues: list[str]
    concurrency: int
    running: list[str] = Field(description="ids of the jobs running now")
    done: int = Field(description="jobs this process has finished (completed, retried or dead)")
    lastBeat: float


class WorkerList(BaseModel):
    items: list[WorkerInfo]
    beatSeconds: float = Field(description="seconds between heartbeats; a worker silent for 3 beats is gone")


class DeadJob(BaseModel):
    """One entry of the dead-letter queue."""

    jobId: str
    type: str
    payload: dict[str, Any]
    error: str
    traceback: str = ""
    attempts: int
    failedAt: float
    replays: int = Field(0, description="times it was replayed from the dead-letter queue before this failure")
    priority: int = Field(DEFAULT_PRIORITY, ge=0, le=9, description="its priority, which a replay keeps")

    @computed_field(description="the named queue it came from (from its id)")  # type: ignore[prop-decorator]
    @property
    def queue(self) -> str:
        return job_queue(self.jobId)


class DeadJobPage(BaseModel):
    items: list[DeadJob]
    total: int
    offset: int
    limit: int


class Replayed(BaseModel):
    jobId: str
    status: str = "queued"


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class DeadJobFilter(BaseModel):
    """Which dead jobs an operation is about; every field given must match."""

    model_config = ConfigDict(extra="forbid")

    type: str | None = Field(None, min_length=1, max_length=64, description="the job type")
    queue: str | None = Field(None, min_length=1, max_length=32, description="the named queue")
    errorContains: str | None = Field(None, min_length=1, max_length=200, description="a substring of the error")
    failedAfter: float | None = Field(None, ge=0, description="failed at or after (Unix seconds)")
    failedBefore: float | None = Field(None, ge=0, description="failed before (Unix seconds)")

    def matches(self, job: "DeadJob") -> bool:
        return ((self.type is None or job.type == self.type)
                and (self.queue is None or job.queue == self.queue)
                and (self.errorContains is None or self.errorContains in job.error)
                and (self.failedAfter is None or job.failedAt >= self.failedAfter)
                and (self.failedBefore is None or job.failedAt < self.failedBefore))

    def is_empty(self) -> bool:
        return self.type is None and self.queue is None and self.errorContains is None and self.failedAfter is None \
            and self.failedBefore is None

    def only(self) -> "DeadJobFilter":
        """The filter fields alone (a request model's other fields dropped)."""
        return DeadJobFilter(type=self.type, queue=self.queue, errorContains=self.errorContains,
                             failedAfter=self.failedAfter, failedBefore=self.failedBefore)


class ReplayRequest(DeadJobFilter):
    """Body of POST /dlq/replay."""

    limit: int = Field(100, ge=1, le=100, description="most jobs replayed by this call")
    dryRun: bool = Field(False, description="report what would be replayed, replay nothing")


class PurgeRequest(DeadJobFilter):
    """Body of POST /dlq/purge."""

    confirm: bool = Field(False, description="must be true: a purge cannot be undone")


class ReplayReport(BaseModel):
    matched: int = Field(description="dead jobs matching the filter (of those seen, see complete)")
    replayed: int = Field(description="put back on the queue by this call (0 with dryRun)")
    skipped: int = Field(description="matching jobs left in the DLQ: replayed DLQ_MAX_REPLAYS times already")
    jobIds: list[str] = Field(description="replayed by this call (with dryRun: what it would replay)")
    skippedIds: list[str]
    remaining: int = Field(description="matching, replayable jobs still in the DLQ after this call")
    complete: bool = Field(description="false when the DLQ could not be read whole (SQS: one pass reads at most "
                                       "1,000 messages): then more may match than counted")


class PurgeReport(BaseModel):
    purged: int
    remaining: int = Field(description="matching jobs still in the DLQ after this call")
    complete: bool = Field(description="false when the DLQ could not be read whole: more may match")
