"""The ports the pure functions are given: small protocols, one per kind of I/O."""

from typing import Protocol

from functions.models import DeadJob, JobRecord


class JobQueue(Protocol):
    def submit(self, job: JobRecord, once: tuple[str, str] | None = None) -> tuple[str, str] | None:
        """Store the job and enqueue it; durable when this returns.

        With `once` = (idempotency key, request fingerprint), do so only if no
        job holds the key yet, atomically; else return the holder's
        (jobId, fingerprint) and write nothing.
        """

    def get(self, job_id: str) -> JobRecord | None: ...

    def counts(self) -> dict[str, int]:
        """waiting, active, completed, failed and delayed counts, and dlqPending where dead
        jobs can wait for their DLQ put (counted in the stats' dlq)."""

    def requeue(self, job: JobRecord) -> None:
        """Put a job back on the queue as a fresh job (attempts reset)."""


class DeadLetterQueue(Protocol):
    def put(self, job: DeadJob) -> None: ...

    def list(self, offset: int, limit: int) -> list[DeadJob]: ...

    def get(self, job_id: str) -> DeadJob | None: ...

    def take(self, job_id: str) -> DeadJob | None:
        """Remove the entry and return it; None if absent (so a replay happens once)."""

    def count(self) -> int: ...


class HealthProbe(Protocol):
    def dependencies(self) -> dict[str, bool]:
        """Dependency name -> reachable, without blocking for long."""
