"""Spans for every request and every job attempt: W3C trace context always, OpenTelemetry when it is on.

Off (the default), a span is only its ids, made when something asks for them (a log line, a submitted
job's record): a request whose lines are not logged and that submits nothing makes none. On (the
`tracing` extra installed, and OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
OTEL_TRACES_EXPORTER=otlp set; OTEL_TRACES_EXPORTER=none turns it off), spans are the SDK's, exported
over OTLP/HTTP in batches with `service.name` from OTEL_SERVICE_NAME (default `forkline`) and the other
OTEL_* variables the SDK reads. The SDK is imported, and its exporter thread started, on first use in
each process: after the supervisor forked it, never before (a fork makes the child choose again).
"""

import logging
import os
import random
from typing import Any

from functions.trace_context import TraceContext, child_of, parse

log = logging.getLogger("forkline.tracing")
SERVER, CONSUMER = "server", "consumer"


def random_hex(n: int) -> str:
    """n random bytes as hex: Python's generator (reseeded in a forked child), not a system call each."""
    return f"{random.getrandbits(8 * n):0{2 * n}x}"


class Span:
    """A request's or an attempt's span: its context and, when on, the SDK's span, ended with its last
    attributes by `end`. Off, the context is made when first asked (a log line, a submitted job), from
    the parent's headers kept as they came (`headers`): a span nobody asks about costs no parsing and
    no random ids."""

    __slots__ = ("_parent", "_context", "_sdk", "_headers")

    def __init__(self, parent: TraceContext | None, context: TraceContext | None, sdk: Any,
                 headers: tuple[str | None, str | None] | None):
        self._parent, self._context, self._sdk, self._headers = parent, context, sdk, headers

    @property
    def recording(self) -> bool:
        """An SDK span (tracing on), which `end` exports."""
        return self._sdk is not None

    def context(self) -> TraceContext:
        if self._context is None:
            if self._headers is not None and self._headers[0]:
                self._parent = parse(*self._headers)
            self._context = child_of(self._parent, random_hex)
        return self._context

    def ids(self) -> tuple[str, str]:
        """(trace id, span id), for log lines."""
        context = self.context()
        return context.trace_id, context.span_id

    def end(self, name: str | None = None, **attributes: Any) -> None:
        if self._sdk is not None:
            if name:
                self._sdk.update_name(name)
            self._sdk.set_attributes(attributes)
            self._sdk.end()


class Tracing:
    """Tracing off: spans are ids only."""

    enabled = False

    def request_span(self, traceparent: str | None, tracestate: str | None, name: str,
                     attributes: dict[str, Any]) -> Span:
        """The span of a request, a child of the caller's when its headers carry a valid one."""
        return Span(None, None, None, (traceparent, tracestate))

    def attempt_span(self, traceparent: str | None, tracestate: str | None, name: str,
                     attributes: dict[str, Any]) -> Span:
        """The span of one attempt of a job, a child of its submitting request's span."""
        return Span(None, None, None, (traceparent, tracestate))

    def flush(self) -> None:
        """Export what is batched (a Lambda invocation's end: the function may be frozen after it)."""

    def shutdown(self) -> None:
        pass


class OpenTelemetryTracing(Tracing):
    """Spans of the OpenTelemetry SDK; `exporter` (default: OTLP/HTTP from the OTEL_* variables) behind a
    batch processor, or behind `processor` (tests: the SDK's SimpleSpanProcessor)."""

    enabled = True

    def request_span(self, traceparent: str | None, tracestate: str | None, name: str,
                     attributes: dict[str, Any]) -> Span:
        return self.span(parse(traceparent, tracestate) if traceparent else None, name, SERVER, attributes)

    def attempt_span(self, traceparent: str | None, tracestate: str | None, name: str,
                     attributes: dict[str, Any]) -> Span:
        return self.span(parse(traceparent, tracestate) if traceparent else None, name, CONSUMER, attributes)

    def __init__(self, exporter: Any = None, processor: Any = None):
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        self.trace = trace
        self.provider = TracerProvider(resource=Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME") or "forkline"}))
        self.provider.add_span_processor((processor or BatchSpanProcessor)(exporter))
        self.tracer = self.provider.get_tracer("forkline")
        self.kinds = {SERVER: trace.SpanKind.SERVER, CONSUMER: trace.SpanKind.CONSUMER}

    def span(self, parent: TraceContext | None, name: str, kind: str, attributes: dict[str, Any]) -> Span:
        trace = self.trace
        context = None
        if parent is not None:
            remote = trace.SpanContext(int(parent.trace_id, 16), int(parent.span_id, 16), is_remote=True,
                                       trace_flags=trace.TraceFlags(int(parent.flags, 16)),
                                       trace_state=trace.TraceState.from_header([parent.state]))
            context = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        sdk = self.tracer.start_span(name, context=context, kind=self.kinds[kind], attributes=attributes)
        made = sdk.get_span_context()
        return Span(parent, TraceContext(f"{made.trace_id:032x}", f"{made.span_id:016x}", f"{made.trace_flags:02x}",
                                         parent.state if parent else ""), sdk, None)

    def flush(self) -> None:
        self.provider.force_flush(timeout_millis=2000)

    def shutdown(self) -> None:
        self.provider.shutdown()  # exports what the batch still holds


def tracing_on() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return exporter == "otlp" or bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                                      or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


_chosen: Tracing | None = None


def _forget_in_child() -> None:
    global _chosen
    _chosen = None  # a forked child chooses its own: its exporter thread is its own


os.register_at_fork(after_in_child=_forget_in_child)


def tracing() -> Tracing:
    """This process's tracing, chosen on first use in it (in a forked child, again: no pid read per call)."""
    global _chosen
    if _chosen is None:
        chosen = Tracing()
        if tracing_on():
            try:
                chosen = OpenTelemetryTracing()
            except ImportError as exc:  # asked for, not installed: say so once, trace nothing
                log.error("tracing is on (OTEL_*) but the SDK is missing: install forkline[tracing] (%s)", exc,
                          extra={"event": "tracing_unavailable"})
        _chosen = chosen
    return _chosen


def use_tracing(chosen: Tracing) -> None:
    """Use `chosen` in this process (tests: the SDK with an in-memory exporter)."""
    global _chosen
    _chosen = chosen


def attempt_span(trace: bytes | str | None, job_id: str, job_type: str, queue: str, attempt: int) -> Span:
    """The span of one attempt, from its record's "<traceparent>\\n<tracestate>" (the claim's, or the
    SQS message's), with the job's attributes when tracing is on."""
    text = trace.decode() if isinstance(trace, bytes) else (trace or "")
    traceparent, _, tracestate = text.partition("\n")
    chosen = tracing()
    attributes = {"forkline.job.id": job_id, "forkline.job.type": job_type, "forkline.job.queue": queue,
                  "forkline.job.attempt": attempt, "messaging.system": "forkline",
                  "messaging.destination.name": queue} if chosen.enabled else {}
    return chosen.attempt_span(traceparent or None, tracestate or None, f"job {job_type}", attributes)
