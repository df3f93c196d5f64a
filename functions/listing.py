"""GET /jobs (jobs by state, newest first, paged by an opaque cursor) and GET /queue/history (per-queue
counts of accepted, completed, failed and retried jobs per minute or hour): the parameters checked here,
the reading done by the JobQueue port (both pairings)."""

import base64
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.errors import InvalidInput, validation_details
from functions.jobs import QUEUE_NAME_PATTERN, declared_queues
from functions.models import JobRecord, JobState
from functions.ports import JobQueue

LISTED_STATES = tuple(state.value for state in JobState)
HISTORY_EVENTS = ("accepted", "completed", "failed", "retried")
STEPS = {"minute": 60, "hour": 3600}
REACH = {"minute": 86400, "hour": 7 * 86400}  # how far back each step's history is kept


class JobListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal[tuple(LISTED_STATES)] | None = Field(None, description="one state; every state when absent")  # type: ignore[valid-type]
    queue: str | None = Field(None, pattern=QUEUE_NAME_PATTERN, description="one named queue; all when absent")
    type: str | None = Field(None, min_length=1, max_length=64, description="one job type")
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, min_length=1, max_length=400, description="from the previous page")


class JobPage(BaseModel):
    items: list[JobRecord]
    cursor: str | None = Field(description="the next page's cursor; null on the last page")


class HistoryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: str | None = Field(None, pattern=QUEUE_NAME_PATTERN, description="one named queue; all when absent")
    since: float | None = Field(None, ge=0, description="Unix seconds; default: one hour (minute) or day (hour) ago")
    until: float | None = Field(None, ge=0, description="Unix seconds; default: now")
    step: Literal["minute", "hour"] = "minute"


class HistoryBucket(BaseModel):
    at: int = Field(description="the bucket's start (Unix seconds)")
    accepted: int = 0
    completed: int = 0
    failed: int = Field(0, description="dead: out of attempts")
    retried: int = 0


class History(BaseModel):
    queue: str | None
    step: Literal["minute", "hour"]
    since: int
    until: int
    buckets: list[HistoryBucket]


def encode_cursor(score: float, job_id: str) -> str:
    """A page's end as the next page's cursor: opaque to clients (the time and the job id)."""
    return base64.urlsafe_b64encode(json.dumps([score, job_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        score, job_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return float(score), str(job_id)
    except (ValueError, TypeError):
        raise InvalidInput("Invalid cursor", [{"field": "cursor", "error": "not a cursor this API gave"}]) from None


def _parse(model: type[BaseModel], params: dict[str, Any], what: str) -> Any:
    try:
        return model.model_validate({k: v for k, v in params.items() if v not in (None, "")})
    except ValidationError as exc:
        raise InvalidInput(f"Invalid {what}", validation_details(exc)) from None


def _queues(queue: str | None) -> list[str]:
    if queue is None:
        return declared_queues()
    if queue not in declared_queues():
        raise InvalidInput(f"Unknown queue {queue!r}", [{"field": "queue", "error": "not a declared queue"}])
    return [queue]


def list_jobs(params: dict[str, Any], queue: JobQueue) -> JobPage:
    """Newest first (by the time each job entered its state); the cursor is the adapter's, opaque here."""
    query: JobListQuery = _parse(JobListQuery, params, "job list query")
    states = [query.state] if query.state else list(LISTED_STATES)
    items, cursor = queue.list_jobs(states, _queues(query.queue), query.type, query.limit, query.cursor)
    return JobPage(items=items, cursor=cursor)


def job_history(params: dict[str, Any], queue: JobQueue, now: float) -> History:
    """Buckets from `since` to `until`, every one present (zeros included), summed over the queues asked."""
    query: HistoryQuery = _parse(HistoryQuery, params, "history query")
    step = STEPS[query.step]
    until = now if query.until is None else min(query.until, now)
    since = until - (3600 if query.step == "minute" else 86400) if query.since is None else query.since
    if since >= until:
        raise InvalidInput("since must be before until", [{"field": "since", "error": "not before until"}])
    if since < now - REACH[query.step]:
        raise InvalidInput(f"per {query.step} history reaches {REACH[query.step] // 3600} hours back",
                           [{"field": "since", "error": f"earlier than the {query.step} history is kept"}])
    first, last = int(since // step * step), int(until // step * step)
    counts = queue.history(_queues(query.queue), first, last + step, step)
    buckets = [HistoryBucket(at=at, **counts.get(at, {})) for at in range(first, last + step, step)]
    return History(queue=query.queue, step=query.step, since=first, until=last + step, buckets=buckets)
