"""W3C trace context (https://www.w3.org/TR/trace-context/): a request's `traceparent` and `tracestate`
read, a span's own made, and passed on to the job the request submits, so each attempt of the job is a
child of the request's span. Pure: the random ids come in as a function.

Invariants: a context read from a header is used only when valid (version not `ff`; a version-00
header has exactly four fields; trace id and parent id hex of the right length and not all zeros);
otherwise a new trace starts. `tracestate` is passed on only with a valid `traceparent` and only when
it is at most 512 characters of printable ASCII (else dropped, as the spec allows).
"""

import re
from collections.abc import Callable
from typing import NamedTuple

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[ -~]*)?$")
_TRACESTATE = re.compile(r"^[ -~]{0,512}$")
SAMPLED = "01"
_NO_TRACE, _NO_SPAN = "0" * 32, "0" * 16


class TraceContext(NamedTuple):
    """One span's place in a trace: its trace id (32 hex), its own span id (16 hex), its flags and the
    vendors' `tracestate` it carries on. (A tuple: made for every logged request and job attempt.)"""

    trace_id: str
    span_id: str
    flags: str = SAMPLED
    state: str = ""

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    @property
    def sampled(self) -> bool:
        return int(self.flags, 16) & 1 == 1


def parse(traceparent: str | None, tracestate: str | None = None) -> TraceContext | None:
    """The caller's context from the headers (its span is the parent), or None when absent or invalid."""
    if not traceparent:
        return None
    found = _TRACEPARENT.match(traceparent if traceparent.islower() else traceparent.strip().lower())
    if found is None:
        return None
    version, trace_id, span_id, flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _NO_TRACE or span_id == _NO_SPAN:
        return None
    state = (tracestate or "").strip()
    return TraceContext(trace_id, span_id, flags, state if _TRACESTATE.match(state) else "")


def child_of(parent: TraceContext | None, random_hex: Callable[[int], str]) -> TraceContext:
    """A new span under `parent` (its trace, flags and state), or the first span of a new trace.
    `random_hex(n)`: n random bytes as hex."""
    if parent is None:
        return TraceContext(random_hex(16), random_hex(8))
    return TraceContext(parent.trace_id, random_hex(8), parent.flags, parent.state)
