"""Operations on the dead-letter queue: look up, filter, replay one or many, delete, purge.

Pure: the DLQ and the job queue are ports, the clock a number. Every operation takes
entries out of the DLQ with `take`/`take_many` (each entry is taken once, so two
operators replaying at the same time replay each job once) and puts an entry back if
its job cannot be queued again, so nothing is lost.
"""

from typing import Any

from pydantic import ValidationError

from functions.errors import InvalidInput, NotAcknowledged, NotFound, validation_details
from functions.jobs import max_attempts_for
from functions.models import (
    DeadJob,
    DeadJobFilter,
    DeadJobPage,
    JobRecord,
    JobState,
    PurgeReport,
    PurgeRequest,
    Replayed,
    ReplayReport,
    ReplayRequest,
)
from functions.ports import DeadLetterQueue, JobQueue
from functions.trace_context import TraceContext

PURGE_MAX = 1000  # most entries one purge call removes


def parse_filter(params: dict[str, Any]) -> DeadJobFilter:
    """The filter from query parameters (strings) or a JSON body; 422 naming the bad field."""
    try:
        return DeadJobFilter.model_validate({k: v for k, v in params.items() if v not in (None, "")})
    except ValidationError as exc:
        raise InvalidInput("Invalid DLQ filter", validation_details(exc)) from None


def _parse(model: type[ReplayRequest] | type[PurgeRequest], body: Any) -> Any:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput("Invalid request", validation_details(exc)) from None


def get_dead(dlq: DeadLetterQueue, job_id: str) -> DeadJob:
    entry = dlq.get(job_id)
    if entry is None:
        raise NotFound(f"No job {job_id!r} in the dead-letter queue")
    return entry


def list_dead(dlq: DeadLetterQueue, first: int, size: int, where: DeadJobFilter) -> DeadJobPage:
    """A page, oldest failure first; `total` counts the matching entries (of those seen)."""
    if where.is_empty():
        return DeadJobPage(items=dlq.list(first, size), total=dlq.count(), offset=first, limit=size)
    matching, _ = dlq.matching(where)
    return DeadJobPage(items=matching[first:first + size], total=len(matching), offset=first, limit=size)


def _requeue(dead: DeadJob, queue: JobQueue, now: float, max_attempts: int, request_id: str | None,
             trace: TraceContext | None) -> None:
    """Its attempts from now on are children of the replaying request's span (`trace`)."""
    queue.requeue(JobRecord(id=dead.jobId, type=dead.type, payload=dead.payload, state=JobState.queued,
                            maxAttempts=max_attempts_for(dead.type, max_attempts), createdAt=now, updatedAt=now,
                            requestId=request_id, replays=dead.replays + 1, priority=dead.priority,
                            traceparent=trace.traceparent if trace else None,
                            tracestate=trace.state if trace and trace.state else None))


def replay_one(job_id: str, dlq: DeadLetterQueue, queue: JobQueue, now: float, max_attempts: int,
               request_id: str | None = None, trace: TraceContext | None = None) -> Replayed:
    """Put one dead job back on the queue, its attempts reset (an operator's explicit choice:
    DLQ_MAX_REPLAYS does not apply)."""
    taken = dlq.take_many([job_id])
    if not taken:
        raise NotFound(f"No job {job_id!r} in the dead-letter queue")
    dead = taken[0]
    try:
        _requeue(dead, queue, now, max_attempts, request_id, trace)
    except NotAcknowledged:
        raise  # queued on the primary, and the take not replicated either: putting it back would make two
    except Exception:
        dlq.put(dead)  # nothing lost: the entry goes back where it was
        raise
    return Replayed(jobId=dead.jobId)


def replay_matching(body: Any, dlq: DeadLetterQueue, queue: JobQueue, now: float, max_attempts: int,
                    max_replays: int, request_id: str | None = None, trace: TraceContext | None = None) -> ReplayReport:
    """Replay at most `limit` matching jobs, oldest failure first. A job already replayed
    `max_replays` times is skipped (it stays in the DLQ), so a poison job cannot loop forever."""
    request = _parse(ReplayRequest, body)
    matching, complete = dlq.matching(request.only())
    eligible = [d for d in matching if d.replays < max_replays]
    skipped = [d.jobId for d in matching if d.replays >= max_replays]
    chosen = [d.jobId for d in eligible[:request.limit]]
    if request.dryRun:
        return ReplayReport(matched=len(matching), replayed=0, skipped=len(skipped), jobIds=chosen,
                            skippedIds=skipped, remaining=len(eligible), complete=complete)
    taken = dlq.take_many(chosen)  # an entry taken meanwhile by another caller is not replayed twice
    replayed: list[str] = []
    for i, dead in enumerate(taken):
        try:
            _requeue(dead, queue, now, max_attempts, request_id, trace)
        except NotAcknowledged:
            for back in taken[i + 1:]:  # this one is queued on the primary (see replay_one)
                dlq.put(back)
            raise
        except Exception:
            for back in taken[i:]:
                dlq.put(back)  # nothing lost: what was not queued goes back
            raise
        replayed.append(dead.jobId)
    return ReplayReport(matched=len(matching), replayed=len(replayed), skipped=len(skipped), jobIds=replayed,
                        skippedIds=skipped, remaining=len(eligible) - len(replayed), complete=complete)


def delete_dead(dlq: DeadLetterQueue, job_id: str) -> None:
    if not dlq.take_many([job_id]):
        raise NotFound(f"No job {job_id!r} in the dead-letter queue")


def purge_matching(body: Any, dlq: DeadLetterQueue) -> PurgeReport:
    """Remove up to PURGE_MAX matching entries; refused (422, nothing removed) without confirm: true."""
    request = _parse(PurgeRequest, body)
    if not request.confirm:
        raise InvalidInput('A purge cannot be undone: send "confirm": true', [{"field": "confirm",
                                                                             "error": "must be true"}])
    matching, complete = dlq.matching(request.only())
    taken = dlq.take_many([d.jobId for d in matching[:PURGE_MAX]])
    return PurgeReport(purged=len(taken), remaining=len(matching) - len(taken), complete=complete)
