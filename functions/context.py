"""What a running job knows about itself: the `ctx` a job function may take as its second argument.

One object per attempt, built by the runner (the Redis consumer, the SQS worker, the Lambda jobs
function) and handed to job functions that declare a second parameter; those that do not are
called with the payload alone. New things a job may read (its parents' results, say) become new
fields here, so no job function's signature has to change for them.

Progress is throttled here, once for every runner: a job may call `ctx.progress` in a tight loop,
and at most one write per PROGRESS_INTERVAL seconds reaches the store; the latest value held back
is written when the attempt ends (`flush`), so the last report before completion is kept.
"""

import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

PROGRESS_INTERVAL = 0.25  # seconds: at most 4 writes a second per job
NOTE_MAX_CHARS = 200


class ProgressStore(Protocol):
    def progress(self, job_id: str, fraction: float, note: str) -> None:
        """Store the job's progress with its record (one write), only while the job is active."""


class JobLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose every line carries the job's id, type, queue and attempt (and whatever the
    call's own `extra` adds)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


@dataclass
class JobContext:
    """The job's id, its attempt (1 for the first), its queue and type, a logger bound to it, and
    `progress(fraction, note)`. Invariant: progress values reach the store in the order reported,
    never faster than one per PROGRESS_INTERVAL, and the last one reported is written by `flush`."""

    job_id: str
    attempt: int
    queue: str
    type: str
    store: ProgressStore
    clock: Callable[[], float]  # monotonic seconds, for the throttle
    log: logging.LoggerAdapter = field(init=False)  # type: ignore[type-arg]
    _written_at: float = field(default=float("-inf"), init=False)
    _held: tuple[float, str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.log = JobLog(logging.getLogger("forkline.job"), {
            "jobId": self.job_id, "type": self.type, "queue": self.queue, "attempt": self.attempt})

    def progress(self, fraction: float, note: str = "") -> None:
        """Report how far the job has got: `fraction` from 0 to 1, and a short note (cut to 200
        characters). ValueError for a fraction outside 0-1."""
        if not 0.0 <= float(fraction) <= 1.0:
            raise ValueError(f"progress must be between 0 and 1, not {fraction!r}")
        self._held = (float(fraction), str(note)[:NOTE_MAX_CHARS])
        now = self.clock()
        if now - self._written_at >= PROGRESS_INTERVAL:
            self._write(now)

    def flush(self) -> None:
        """Write the last progress held back by the throttle (called by the runner when the attempt ends)."""
        if self._held is not None:
            self._write(self.clock())

    def _write(self, now: float) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._written_at = now
            self.store.progress(self.job_id, held[0], held[1])
