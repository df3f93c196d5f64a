"""Pydantic models of the API's inputs and outputs."""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Welcome(BaseModel):
    message: str
    workerPID: int


class Health(BaseModel):
    status: str = Field(description="ok, or degraded when a dependency is down")
    uptime: float = Field(description="seconds since this worker started")
    workerPID: int
    dependencies: dict[str, str] = Field(description="dependency name -> up/down")


class JobRequest(BaseModel):
    """Body of POST /jobs. Fields other than `type` form the job's payload."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="message", max_length=64, description="registered job type")


class JobState(StrEnum):
    queued = "queued"
    active = "active"
    retrying = "retrying"
    completed = "completed"
    dead = "dead"


class JobRecord(BaseModel):
    """A job as stored and as returned by GET /jobs/{id}."""

    id: str
    type: str
    payload: dict[str, Any]
    state: JobState
    attempts: int = 0
    maxAttempts: int
    lastError: str | None = None
    result: Any = None
    createdAt: float
    updatedAt: float
    nextAttemptAt: float | None = None
    finishedAt: float | None = None
    dlqPending: bool = Field(False, description="dead, and its DLQ entry not written yet (retried until it is)")
    requestId: str | None = Field(None, description="X-Request-ID of the request that submitted it")


class JobAccepted(BaseModel):
    jobId: str
    status: str = "queued"


class QueueStats(BaseModel):
    waiting: int
    active: int
    completed: int = Field(description="jobs completed since the queue was created")
    failed: int = Field(description="jobs moved to the dead-letter queue since the queue was created")
    delayed: int = Field(description="jobs waiting for a retry")
    dlq: int = Field(description="jobs currently in the dead-letter queue, including dlqPending")
    dlqPending: int = Field(0, description="dead jobs whose DLQ entry is not written yet (a failed put, retried)")


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
