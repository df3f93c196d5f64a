"""The ports the pure functions are given: small protocols, one per kind of I/O."""

import builtins
from typing import Any, Protocol

from functions.models import DeadJob, DeadJobFilter, JobRecord, JobState, WorkerInfo
from functions.trace_context import TraceContext


class JobQueue(Protocol):
    def submit(self, job: JobRecord, once: tuple[str, str] | None = None) -> tuple[str, str] | None:
        """Store the job and enqueue it; durable when this returns.

        With `once` = (idempotency key, request fingerprint), do so only if no
        job holds the key yet, atomically; else return the holder's
        (jobId, fingerprint) and write nothing.
        """

    def get(self, job_id: str) -> JobRecord | None: ...

    def counts(self) -> dict[str, dict[str, int]]:
        """Queue name -> its waiting, active, completed, failed and delayed counts, dlqPending where
        dead jobs can wait for their DLQ put (counted in the stats' dlq) and paused (1 or 0), for
        every declared queue."""

    def pause(self, queue: str, paused: bool) -> None:
        """Stop (True) or resume (False) consumers claiming from a declared queue; jobs are still accepted."""

    def requeue(self, job: JobRecord) -> None:
        """Put a job back on the queue as a fresh job (attempts reset)."""

    def list_jobs(self, states: list[str], queues: list[str], job_type: str | None, limit: int,
                  cursor: str | None) -> tuple[list[JobRecord], str | None]:
        """At most `limit` records in `states` of `queues` (of `job_type` when given), newest first by the
        time each entered its state, after `cursor`; and the next page's cursor (None: the last page).
        Every record listed exists and is in a listed state. A bad cursor: InvalidInput naming it."""

    def history(self, queues: list[str], since: int, until: int, step: int) -> dict[int, dict[str, int]]:
        """Counts of accepted, completed, failed and retried jobs of `queues`, summed per `step`-second
        bucket (by its start) from `since` to `until`."""

    def oldest_waiting(self, now: float) -> dict[str, float]:
        """Queue name -> when its oldest waiting job became claimable (JobRecord.ready_at): queued, or
        due (a delayed job or a retry whose time has come) and not started; queues with none left out."""

    def forget(self, job_id: str) -> JobState | None:
        """Remove a finished job's record (completed or cancelled: FORGETTABLE) at once, atomically.
        Returns the state found (None: no such job); other states are left as they are."""

    def promote(self, job_id: str, now: float) -> tuple[JobState | None, bool]:
        """Make a scheduled or retrying job (models.PROMOTABLE) claimable now, atomically, so that one
        copy of it runs. Returns the state found (None: no such job) and whether it was promoted (a
        promotable job that cannot be: scheduled by an older version, it starts at its time)."""

    def cancel(self, job_id: str, now: float) -> JobState | None:
        """Mark the job cancelled if it has not started (models.CANCELLABLE), atomically; its queue
        message is dropped when it is delivered. Returns the state found (None: no such job)."""


class JobOutcomes(Protocol):
    """Where a job runner records each attempt (the SQS + DynamoDB pairing; on Redis the consumer's
    scripts record them). Every method moves the record only from the state it expects, so a job
    delivered twice reaches one outcome and is counted once."""

    def start(self, job: JobRecord, attempt: int, now: float) -> JobRecord | None:
        """Mark the job active for `attempt` and return its record (state and attempts as moved, its
        timestamps as they were before: its ready_at() is when it became claimable); None when it has
        finished already (a repeated delivery: do not run it). `job` is the message's copy."""

    def completed(self, job_id: str, result: Any, now: float, retention: int | None = None) -> None:
        """`retention`: the job type's own (JobRecord.retention), else the store's."""

    def retrying(self, job_id: str, error: str, next_attempt_at: float, now: float, attempt: int) -> None:
        """`attempt`: the one that failed, listed with its error in the record's `errors`."""

    def dead(self, entry: DeadJob, delivered: bool) -> None:
        """`delivered`: its DLQ entry is written (False: the queue's redrive policy moves it)."""


class DeadLetterQueue(Protocol):
    def put(self, job: DeadJob) -> None: ...

    def list(self, offset: int, limit: int) -> list[DeadJob]: ...

    def get(self, job_id: str) -> DeadJob | None: ...

    def take_many(self, job_ids: builtins.list[str]) -> builtins.list[DeadJob]:
        """Remove and return those of the entries still there, in the order asked (each is taken
        once however many callers race: a replay happens once)."""

    def matching(self, where: DeadJobFilter) -> tuple[builtins.list[DeadJob], bool]:
        """The entries matching `where`, oldest failure first, and whether the whole DLQ was read
        (a backend may read only part of it in one call)."""

    def count(self) -> int: ...

    def count_by_queue(self) -> dict[str, int] | None:
        """Entries per named queue; None when this DLQ keeps every queue's entries together."""


class WorkerRegistry(Protocol):
    """Heartbeats of the consumer processes, on any host."""

    def beat(self, worker: WorkerInfo, ttl: float) -> None:
        """Record this worker as alive for `ttl` seconds."""

    def leave(self, worker_id: str) -> None: ...

    def list(self) -> list[WorkerInfo]:
        """The workers whose last beat has not expired, oldest first."""


class Metrics(Protocol):
    """What the HTTP side counts (Prometheus in production, nothing in unit tests)."""

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None: ...

    def job_enqueued(self, job_type: str) -> None: ...

    def render(self) -> tuple[str, bytes]:
        """(content type, body) of the exposition, with the queue depths read now."""


class JobMetrics(Protocol):
    """What a consumer counts per job."""

    def job_started(self, job_type: str, waited: float | None = None) -> None:
        """`waited`: seconds from when the job became claimable (JobRecord.ready_at) to this start."""

    def job_finished(self, job_type: str, outcome: str, seconds: float | None) -> None:
        """outcome: completed, retried or dead; `seconds` the attempt ran (None: it did not run)."""


class Span(Protocol):
    @property
    def recording(self) -> bool:
        """True when `end` exports it (tracing on)."""

    def context(self) -> TraceContext:
        """Its trace id, its own span id, flags and tracestate (made when first asked, when tracing is off)."""

    def ids(self) -> tuple[str, str]: ...

    def end(self, name: str | None = None, **attributes: Any) -> None:
        """Ended with a last name and attributes (exported when tracing is on)."""


class Tracer(Protocol):
    """Spans of requests and job attempts (adapters/tracing.py): W3C trace context, OpenTelemetry when on."""

    enabled: bool

    def request_span(self, traceparent: str | None, tracestate: str | None, name: str,
                     attributes: dict[str, Any]) -> Span: ...

    def attempt_span(self, traceparent: str | None, tracestate: str | None, name: str,
                     attributes: dict[str, Any]) -> Span: ...


class HealthProbe(Protocol):
    def dependencies(self) -> dict[str, bool]:
        """Dependency name -> reachable, without blocking for long."""
