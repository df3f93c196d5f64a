"""One plain function per HTTP route; ports and clock come in as arguments."""

import hashlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from functions import dead_letters
from functions.errors import Conflict, InvalidInput, KeyReused, NotFound, validation_details
from functions.jobs import DEFAULT_PRIORITY, JOB_TYPES, declared_queues, max_attempts_for, new_job_id
from functions.limits import (
    IDEMPOTENCY_KEY,
    MAX_DELAY_SECONDS,
    PAGE_DEFAULT,
    PAGE_MAX,
    RUN_AT_PAST_SECONDS,
)
from functions.models import (
    CANCELLABLE,
    FORGETTABLE,
    PROMOTABLE,
    DeadJobPage,
    Health,
    JobAccepted,
    JobRecord,
    JobRequest,
    JobState,
    Probe,
    QueueCounts,
    QueueState,
    QueueStats,
    Welcome,
    WorkerList,
)
from functions.ports import DeadLetterQueue, HealthProbe, JobQueue, WorkerRegistry
from functions.trace_context import TraceContext

DEFAULT_JOB_TYPE = JobRequest.model_fields["type"].default  # read once: pydantic builds model_fields per access


def welcome(pid: int) -> Welcome:
    return Welcome(message="Welcome to forkline: a multi-core API with a background job queue", workerPID=pid)


def liveness(pid: int) -> Probe:
    """GET /livez: this worker answers. No dependency is asked: an outage must not restart it."""
    return Probe(status="alive", workerPID=pid)


def readiness(draining: bool, pid: int) -> tuple[int, Probe]:
    """GET /readyz: 200 while this worker takes requests, 503 from the moment it begins to drain, so a
    balancer stops sending before it goes. Redis is left out on purpose: an outage would take every
    worker out at once, and clients would lose forkline's own 503 with Retry-After."""
    return (503, Probe(status="draining", workerPID=pid)) if draining else (200, Probe(status="ready", workerPID=pid))


def health(probe: HealthProbe, started_at: float, now: float, pid: int) -> Health:
    deps = probe.dependencies()
    status = "ok" if all(deps.values()) else "degraded"
    return Health(
        status=status,
        uptime=round(now - started_at, 3),
        workerPID=pid,
        dependencies={name: "up" if up else "down" for name, up in deps.items()},
    )


def run_at_of(request: JobRequest, now: float, max_delay: float) -> float | None:
    """When a job asked to wait may run (None: at once); 422 naming the field past a limit. `max_delay`:
    how far ahead the job queue can hold a job (30 days; SQS: its 900 s DelaySeconds)."""
    if request.delay is not None and request.runAt is not None:
        raise InvalidInput("Give delay or runAt, not both", [{"field": "runAt", "error": "not with delay"}])
    if request.runAt is not None and request.runAt < now - RUN_AT_PAST_SECONDS:
        raise InvalidInput("runAt is more than a minute in the past",
                           [{"field": "runAt", "error": f"at least now - {RUN_AT_PAST_SECONDS} s"}])
    run_at = now + request.delay if request.delay is not None else request.runAt
    if run_at is None or run_at <= now:
        return None
    if run_at - now > max_delay:
        field = "delay" if request.delay is not None else "runAt"
        limit = "the SQS queue's DelaySeconds limit" if max_delay < MAX_DELAY_SECONDS else "30 days"
        raise InvalidInput(f"{field} is more than {max_delay:g} s ahead ({limit})",
                           [{"field": field, "error": f"at most {max_delay:g} s ahead"}])
    return run_at


def build_job(body: Any, unique: str, now: float, max_attempts: int, request_id: str | None = None,
              max_delay: float = MAX_DELAY_SECONDS, priorities: bool = True,
              trace: TraceContext | None = None) -> JobRecord:
    """Validate a POST /jobs body into a new job record (pure: no I/O). Its id is `<queue>.<unique>`;
    `max_attempts` applies unless the job type sets its own max_retries; with `delay` or `runAt` in the
    future it is `scheduled` until `runAt`. `trace`: the submitting request's span, the attempts' parent."""
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object")
    try:
        request = JobRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput("Invalid job request", validation_details(exc)) from None
    job_type = JOB_TYPES.get(request.type)
    if job_type is None:
        raise InvalidInput(f"Unknown job type {request.type!r}", {"known": sorted(JOB_TYPES)})
    try:
        payload = job_type.payload_model.model_validate(request.model_extra or {})
    except ValidationError as exc:
        raise InvalidInput("Invalid job payload", validation_details(exc)) from None
    run_at = run_at_of(request, now, max_delay)
    if request.priority not in (None, DEFAULT_PRIORITY) and not priorities:
        raise InvalidInput("priority is not supported on the SQS queue (SQS has no priorities)",
                           [{"field": "priority", "error": f"only {DEFAULT_PRIORITY} on SQS"}])
    return JobRecord(
        priority=DEFAULT_PRIORITY if request.priority is None else request.priority,
        id=new_job_id(job_type.queue, unique),
        type=job_type.name,
        payload=payload.model_dump(),
        state=JobState.queued if run_at is None else JobState.scheduled,
        runAt=run_at,
        maxAttempts=max_attempts_for(job_type.name, max_attempts),
        retention=job_type.retention,
        createdAt=now,
        updatedAt=now,
        requestId=request_id,
        traceparent=trace.traceparent if trace else None,
        tracestate=trace.state if trace and trace.state else None,
    )


def job_type_of(body: dict[str, Any]) -> str:
    """The job type named by a body that `build_job` accepted."""
    return str(body.get("type", DEFAULT_JOB_TYPE))


def request_fingerprint(job: JobRecord) -> str:
    """What makes two requests the same: the job type and its validated payload."""
    canonical = json.dumps([job.type, job.payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_job(
    body: Any,
    queue: JobQueue,
    new_id: Callable[[], str],
    now: float,
    max_attempts: int,
    idempotency_key: str | None = None,
    request_id: str | None = None,
    max_delay: float = MAX_DELAY_SECONDS,
    priorities: bool = True,
    trace: TraceContext | None = None,
) -> tuple[JobAccepted, bool]:
    """Accept a job; returns it and whether it is new (False: a repeat of an idempotent request)."""
    job = build_job(body, new_id(), now, max_attempts, request_id, max_delay, priorities, trace)
    if idempotency_key is None:
        queue.submit(job)
        return JobAccepted(jobId=job.id, status=job.state.value), True
    if not IDEMPOTENCY_KEY.match(idempotency_key):
        raise InvalidInput("Idempotency-Key must be 1 to 255 printable ASCII characters without spaces")
    fingerprint = request_fingerprint(job)
    holder = queue.submit(job, once=(idempotency_key, fingerprint))
    if holder is None:
        return JobAccepted(jobId=job.id, status=job.state.value), True
    held_id, held_fingerprint = holder
    if held_fingerprint != fingerprint:
        raise KeyReused("This Idempotency-Key was used with a different request", {"jobId": held_id})
    return JobAccepted(jobId=held_id), False


def get_job(job_id: str, queue: JobQueue) -> JobRecord:
    job = queue.get(job_id)
    if job is None:
        raise NotFound(f"No job with id {job_id!r}")
    return job


def cancel_job(job_id: str, queue: JobQueue, now: float) -> JobRecord:
    """DELETE /jobs/{id}: cancel a job that has not started (pending, queued, retrying); 409 otherwise."""
    found = queue.cancel(job_id, now)
    if found is None:
        raise NotFound(f"No job with id {job_id!r}")
    if found not in CANCELLABLE:
        raise Conflict(f"Job {job_id!r} is {found.value}: only a job that has not started can be cancelled",
                       {"state": found.value})
    return get_job(job_id, queue)


def promote_job(job_id: str, queue: JobQueue, now: float) -> JobRecord:
    """POST /jobs/{id}/promote: a scheduled or retrying job may start now (its record, 200); 409 with
    the state for any other state, 404 for an unknown job."""
    found, promoted = queue.promote(job_id, now)
    if found is None:
        raise NotFound(f"No job with id {job_id!r}")
    if found not in PROMOTABLE:
        raise Conflict(f"Job {job_id!r} is {found.value}: only a scheduled or retrying job can be started now",
                       {"state": found.value})
    if not promoted:
        raise Conflict(f"Job {job_id!r} was scheduled by an older forkline: it starts at its time",
                       {"state": found.value})
    return get_job(job_id, queue)


def forget_job(job_id: str, queue: JobQueue) -> None:
    """DELETE /jobs/{id}/record: remove a completed or cancelled job's record before its retention ends
    (`forkline check --cleanup`); 409 for any other state (a dead one: its DLQ entry holds it)."""
    found = queue.forget(job_id)
    if found is None:
        raise NotFound(f"No job with id {job_id!r}")
    if found not in FORGETTABLE:
        raise Conflict(f"Job {job_id!r} is {found.value}: only a completed or cancelled job's record can be removed",
                       {"state": found.value})


def queue_stats(queue: JobQueue, dlq: DeadLetterQueue) -> QueueStats:
    """The template's figures summed over every queue, then each queue's (its `dlq` is None where the
    DLQ keeps every queue's entries together: the total is still exact)."""
    by_queue = dlq.count_by_queue()
    figures = {
        name: QueueCounts(**{k: v for k, v in counts.items() if k != "paused"}, paused=bool(counts.get("paused")),
                          dlq=None if by_queue is None else by_queue.get(name, 0) + counts.get("dlqPending", 0))
        for name, counts in queue.counts().items()
    }
    total = {name: sum(getattr(f, name) for f in figures.values())
             for name in ("waiting", "active", "completed", "failed", "delayed", "dlqPending")}
    dlq_total = (sum(by_queue.values()) if by_queue is not None else dlq.count()) + total["dlqPending"]
    return QueueStats(**total, dlq=dlq_total, queues=figures)


def set_paused(name: str, paused: bool, queue: JobQueue) -> QueueState:
    """POST /queues/{name}/pause and /resume: consumers stop (or start again) claiming from the
    queue; jobs are still accepted. 404 for a queue no job type declares."""
    if name not in declared_queues():
        raise NotFound(f"No queue named {name!r}", {"declared": declared_queues()})
    queue.pause(name, paused)
    return QueueState(queue=name, paused=paused)


def _page_param(value: str | None, default: int, name: str, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer") from None
    if not low <= number <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}")
    return number


def list_dlq(dlq: DeadLetterQueue, offset: str | None, limit: str | None,
             filters: dict[str, Any] | None = None) -> DeadJobPage:
    """GET /dlq: a page of the entries matching the query's filters (dead_letters.parse_filter)."""
    first = _page_param(offset, 0, "offset", 0, 10**9)
    size = _page_param(limit, PAGE_DEFAULT, "limit", 1, PAGE_MAX)
    return dead_letters.list_dead(dlq, first, size, dead_letters.parse_filter(filters or {}))




def list_workers(registry: WorkerRegistry | None, beat_seconds: float) -> WorkerList:
    """The live workers; none where the job store keeps no heartbeats (the SQS job queue: Lambda)."""
    return WorkerList(items=registry.list() if registry is not None else [], beatSeconds=beat_seconds)
