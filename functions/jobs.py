"""Job types: plain functions registered in one place with their queues, and the retry policy."""

import inspect
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from functions.context import JobContext
from functions.errors import JobFailed
from functions.limits import MESSAGE_MAX_CHARS


class MessagePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(max_length=MESSAGE_MAX_CHARS)
    shouldFail: bool = False


class NoopPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SleepPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=600)


class CheckPayload(BaseModel):
    """A probe of `forkline check`: its run and its place in the run's burst."""

    model_config = ConfigDict(extra="forbid")

    run: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    seq: int = Field(ge=0, le=1_000_000)


def run_check(payload: CheckPayload) -> dict[str, Any]:
    """Echo the probe: what `forkline check` reads back proves the job ran."""
    return {"run": payload.run, "seq": payload.seq}


def run_message(payload: MessagePayload) -> dict[str, Any]:
    """The template's job: echo the message, or fail on request."""
    if payload.shouldFail:
        raise JobFailed(f"Job failed on purpose: {payload.message}")
    return {"processed": payload.message}


def run_noop(payload: NoopPayload) -> None:
    return None


def run_sleep(payload: SleepPayload, ctx: JobContext) -> dict[str, float]:
    """A job that takes time: for demos, shutdown, timeout and progress checks.

    Sleeps in short slices, as a long job should run: Python code between
    slices is where a JOB_TIMEOUT can stop it, and where it reports its progress.
    """
    started = time.monotonic()
    deadline = started + payload.seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))
        slept = min(time.monotonic() - started, payload.seconds)
        ctx.progress(slept / payload.seconds, f"{slept:.1f} of {payload.seconds:g} s")
    return {"slept": payload.seconds}


DEFAULT_QUEUE = "default"
CHECK_RETENTION = 600  # seconds
DEFAULT_PRIORITY = 5  # of 0-9, higher first
QUEUE_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
QUEUE_NAME = re.compile(QUEUE_NAME_PATTERN)


@dataclass(frozen=True)
class JobType:
    """A kind of job. `run(payload)`, or `run(payload, ctx)` for a function that takes the job's
    context (functions/context.py). `queue`: the named queue its jobs wait in (each queue has its own
    consumer threads, so slow jobs on one cannot hold up another's); `max_retries` and `timeout`
    (seconds per attempt) override JOB_MAX_RETRIES and JOB_TIMEOUT for this type; `retention`
    (seconds a finished record is kept) JOB_RETENTION."""

    name: str
    payload_model: type[BaseModel]
    run: Callable[..., Any]  # (payload) or (payload, ctx)
    queue: str = DEFAULT_QUEUE
    max_retries: int | None = None
    timeout: float | None = None
    retention: int | None = None
    takes_context: bool = field(init=False)

    def __post_init__(self) -> None:
        if not QUEUE_NAME.match(self.queue):
            raise ValueError(f"job type {self.name!r}: queue name {self.queue!r} must match {QUEUE_NAME_PATTERN}")
        object.__setattr__(self, "takes_context", len(inspect.signature(self.run).parameters) >= 2)


JOB_TYPES: dict[str, JobType] = {
    t.name: t
    for t in (
        JobType("message", MessagePayload, run_message),
        JobType("noop", NoopPayload, run_noop),
        JobType("sleep", SleepPayload, run_sleep, queue="slow"),
        # forkline check's probes: their records are gone minutes after they finish.
        JobType("check", CheckPayload, run_check, retention=CHECK_RETENTION),
    )
}


def declared_queues() -> list[str]:
    """Every queue a job type names, `default` first."""
    return sorted({t.queue for t in JOB_TYPES.values()} | {DEFAULT_QUEUE}, key=lambda q: (q != DEFAULT_QUEUE, q))


def new_job_id(queue: str, unique: str) -> str:
    """A job id carries its queue: `<queue>.<unique>` (so any route finds the job's keys from its id)."""
    return f"{queue}.{unique}"


def queue_of(job_id: str) -> str | None:
    """The queue a job id names; None for an id from before named queues (a `default` job)."""
    queue, dot, _ = job_id.partition(".")
    return queue if dot and QUEUE_NAME.match(queue) else None


def queue_of_type(type_name: str) -> str:
    """The queue a job type declares (`default` for a type this code does not know)."""
    job_type = JOB_TYPES.get(type_name)
    return job_type.queue if job_type is not None else DEFAULT_QUEUE


def max_attempts_for(type_name: str, default: int) -> int:
    """Attempts a job of this type gets (its max_retries + 1, else the global `default`)."""
    job_type = JOB_TYPES.get(type_name)
    return job_type.max_retries + 1 if job_type is not None and job_type.max_retries is not None else default


def job_timeout(type_name: str, default: float) -> tuple[float, str]:
    """Seconds one attempt of this type may run, and what sets them (for the JobTimeout's message)."""
    job_type = JOB_TYPES.get(type_name)
    if job_type is not None and job_type.timeout is not None:
        return job_type.timeout, f"the {type_name} type's timeout"
    return default, "JOB_TIMEOUT"


def run_job(type_name: str, payload: dict[str, Any], ctx: JobContext | None = None) -> Any:
    """Validate a stored payload against its job type and run the job function, with `ctx` when it
    takes one. The progress the throttle held back is written when the function returns or raises."""
    job_type = JOB_TYPES[type_name]
    payload_model = job_type.payload_model.model_validate(payload)
    if not job_type.takes_context:
        return job_type.run(payload_model)
    if ctx is None:
        raise RuntimeError(f"job type {type_name!r} takes a context: its runner must give one")
    try:
        return job_type.run(payload_model, ctx)
    finally:
        ctx.flush()


def backoff_delay(attempt: int, base: float, cap: float = float("inf"), jitter: float = 0.0,
                  rand: float = 0.5) -> float:
    """Delay before the next attempt after `attempt` failed ones: base, 2*base, 4*base... never
    over `cap`. With `jitter` (a fraction, 0-1) the delay is spread over delay * (1 +/- jitter)
    by `rand` (uniform in [0, 1), the caller's random number), then capped again."""
    delay = min(float(base * 2 ** (attempt - 1)), cap)
    if jitter:
        delay = min(delay * (1 + jitter * (2 * rand - 1)), cap)
    return delay
