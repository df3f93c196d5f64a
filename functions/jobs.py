"""Job types: plain functions registered in one place, and the retry policy."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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


def run_message(payload: MessagePayload) -> dict[str, Any]:
    """The template's job: echo the message, or fail on request."""
    if payload.shouldFail:
        raise JobFailed(f"Job failed on purpose: {payload.message}")
    return {"processed": payload.message}


def run_noop(payload: NoopPayload) -> None:
    return None


def run_sleep(payload: SleepPayload) -> dict[str, float]:
    """A job that takes time: for demos, shutdown and timeout checks.

    Sleeps in short slices, as a long job should run: Python code between
    slices is where a JOB_TIMEOUT can stop it.
    """
    deadline = time.monotonic() + payload.seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))
    return {"slept": payload.seconds}


@dataclass(frozen=True)
class JobType:
    name: str
    payload_model: type[BaseModel]
    run: Callable[[Any], Any]


JOB_TYPES: dict[str, JobType] = {
    t.name: t
    for t in (
        JobType("message", MessagePayload, run_message),
        JobType("noop", NoopPayload, run_noop),
        JobType("sleep", SleepPayload, run_sleep),
    )
}


def run_job(type_name: str, payload: dict[str, Any]) -> Any:
    """Validate a stored payload against its job type and run the job function."""
    job_type = JOB_TYPES[type_name]
    return job_type.run(job_type.payload_model.model_validate(payload))


def backoff_delay(attempt: int, base: float, cap: float = float("inf"), jitter: float = 0.0,
                  rand: float = 0.5) -> float:
    """Delay before the next attempt after `attempt` failed ones: base, 2*base, 4*base... never
    over `cap`. With `jitter` (a fraction, 0-1) the delay is spread over delay * (1 +/- jitter)
    by `rand` (uniform in [0, 1), the caller's random number), then capped again."""
    delay = min(float(base * 2 ** (attempt - 1)), cap)
    if jitter:
        delay = min(delay * (1 + jitter * (2 * rand - 1)), cap)
    return delay
