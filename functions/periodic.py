"""Periodic jobs: schedules (every N seconds, or a 5-field crontab) and the tick each one is due at.

Every consumer process submits each due tick through the idempotent submit, with the key
`periodic:<name>:<tick>` and the job id `<queue>.periodic:<name>:<tick>`: however many
consumers try, exactly one job results, and no lock can be lost. A tick is skipped only
when no consumer is alive during it (ticks are not caught up after a stop).
"""

import json
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from functions.jobs import JOB_TYPES
from functions.ports import JobQueue
from functions.routes import submit_job

_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))  # minute, hour, day, month, weekday (0 = Sunday)


def cron_field(text: str, low: int, high: int) -> frozenset[int]:
    """One crontab field: `*`, `*/n`, `a`, `a-b`, `a-b/n`, comma-separated."""
    values: set[int] = set()
    for part in text.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if spec == "*":
            first, last = low, high
        elif "-" in spec:
            first, last = (int(v) for v in spec.split("-", 1))
        else:
            first = last = int(spec)
        if not (low <= first <= last <= high and step >= 1):
            raise ValueError(f"crontab field {text!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Periodic:
    """A job type run on a schedule: every `every` seconds, or at the minutes `cron` matches (UTC)."""

    name: str
    type: str
    every: float | None = None
    cron: tuple[frozenset[int], ...] | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    def tick(self, now: float) -> int | None:
        """The tick due at `now` (its start, in Unix seconds), or None if none is."""
        if self.every is not None:
            return int(now // self.every * self.every)
        assert self.cron is not None
        minute = int(now // 60 * 60)
        moment = time.gmtime(minute)
        weekday = (moment.tm_wday + 1) % 7
        fields = (moment.tm_min, moment.tm_hour, moment.tm_mday, moment.tm_mon, weekday)
        return minute if all(value in allowed for value, allowed in zip(fields, self.cron, strict=True)) else None

    def key(self, tick: int) -> str:
        return f"periodic:{self.name}:{tick}"


def parse_periodic(text: str) -> list[Periodic]:
    """PERIODIC_JOBS: `name=type@schedule[@payload JSON]` entries separated by `;`, the schedule a
    number of seconds or a 5-field crontab: `tick=noop@2; digest=message@0 7 * * 1@{"message": "hi"}`."""
    found: list[Periodic] = []
    for entry in (e.strip() for e in text.split(";") if e.strip()):
        name, equals, rest = entry.partition("=")
        type_name, _, rest = rest.partition("@")
        schedule, _, payload_text = rest.partition("@")
        name, type_name, schedule = name.strip(), type_name.strip(), schedule.strip()
        if not equals or not name.replace("-", "").replace("_", "").isalnum() or not schedule:
            raise ValueError(f"{entry!r}: give name=type@schedule (seconds, or a crontab)")
        if type_name not in JOB_TYPES:
            raise ValueError(f"{entry!r}: unknown job type {type_name!r}")
        payload = json.loads(payload_text) if payload_text.strip() else {}
        try:
            JOB_TYPES[type_name].payload_model.model_validate(payload)
        except ValidationError as exc:
            raise ValueError(f"{entry!r}: invalid payload for {type_name}: {exc.errors()[0]['msg']}") from None
        fields = schedule.split()
        if len(fields) == 1:
            every = float(fields[0])
            if every < 1:
                raise ValueError(f"{entry!r}: every at least 1 second")
            found.append(Periodic(name, type_name, every=every, payload=payload))
        elif len(fields) == 5:
            cron = tuple(cron_field(f, *bounds) for f, bounds in zip(fields, _CRON_RANGES, strict=True))
            found.append(Periodic(name, type_name, cron=cron, payload=payload))
        else:
            raise ValueError(f"{entry!r}: the schedule is seconds or 5 crontab fields")
    return found


def submit_due(schedule: Periodic, queue: JobQueue, now: float, max_attempts: int) -> tuple[int, bool] | None:
    """Submit the tick due at `now` once for all consumers: (tick, whether this call made the job), or
    None when no tick is due."""
    tick = schedule.tick(now)
    if tick is None:
        return None
    key = schedule.key(tick)
    _, created = submit_job({"type": schedule.type, **schedule.payload}, queue, lambda: key, now, max_attempts,
                            idempotency_key=key)
    return tick, created
