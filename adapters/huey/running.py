"""The state of one claimed job while a consumer thread holds it."""

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Outcome(Enum):
    PENDING = "pending"  # not run yet, or running
    RECORDED = "recorded"  # retry scheduled or dead-lettered: drop the lease now
    WITH_NEXT_CLAIM = "with_next_claim"  # completed: recorded, lease and all, by this thread's next claim
    UNRECORDED = "unrecorded"  # ran, but its outcome could not be written: the lease expires and it runs again
    HELD = "held"  # dead, but Redis could not record it: the outbox keeps the lease until it can


@dataclass
class RunningJob:
    """Attached to Huey's Task once, when the job is claimed; read by the hooks and by `execute`."""

    message: bytes  # the framed queue message, which is also the lease's member
    attempt: int
    max_attempts: int = 0
    priority: int = 5
    ready_at: float = 0.0  # when it became claimable (JobRecord.ready_at; 0: unknown, a message without a record)
    trace: bytes = b""  # its record's traceparent and tracestate, b"<traceparent>\n<tracestate>"
    span: Any = None  # the attempt's span (adapters/tracing.py), from its start to its outcome
    kind: str = ""  # what its outcome was: completed, retried or dead
    started: bool = False
    outcome: Outcome = Outcome.PENDING
    started_at: float = 0.0  # time.perf_counter() when the attempt started
    job_type: str = ""

    def keeps_lease(self) -> bool:
        """True when the lease must expire rather than be dropped now: started, and nothing recorded."""
        return self.started and self.outcome in (Outcome.PENDING, Outcome.UNRECORDED)
