"""Cross-cutting HTTP work: request ids, metrics and access lines; the body size limit; API keys."""

import hmac
import io
import itertools
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import falcon

from adapters.logs import REQUEST_ID, TRACE, FastLogger
from adapters.process_id import current_pid
from functions.ports import Metrics, Tracer

access = FastLogger("forkline.access")


class RequestContext:
    """Every request gets an id: the client's X-Request-ID when valid (1-128 printable ASCII
    characters, functions.limits.REQUEST_ID_PATTERN), else a new one; it is sent back in
    X-Request-ID and carried by every log line written while the request is served. Each answer
    is counted (route template, method, status, latency), and logged as one access line when
    ACCESS_LOG is on. With `tracer` (this process's Tracer, asked per request: it is chosen after a
    fork), each request is a span, a child of the caller's when `traceparent` is valid: its ids are in
    the request's log lines and in the jobs it submits (`req.context.span`)."""

    def __init__(self, metrics: Metrics, access_log: bool = False, tracer: Callable[[], Tracer] | None = None):
        self.metrics = metrics
        self.access_log = access_log
        self.tracer = tracer
        self.new_ids: Iterator[str] | None = None
        self.pid = 0

    def new_id(self) -> str:
        """16 hex digits: 8 random per process, then a counter (cheaper than 8 random bytes each)."""
        if self.pid != current_pid() or self.new_ids is None:
            self.pid, prefix = current_pid(), os.urandom(4).hex()
            self.new_ids = (f"{prefix}{n:08x}" for n in itertools.count(int.from_bytes(os.urandom(2), "big")))
        return next(self.new_ids)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        # The WSGI variable, not get_header(), and str methods, not a regex: this runs on every request.
        request_id = req.env.get("HTTP_X_REQUEST_ID")
        if request_id is None or not (0 < len(request_id) <= 128 and request_id.isascii() and request_id.isprintable()):
            request_id = self.new_id()
        context = req.context
        context.request_id = request_id
        context.started = time.perf_counter()
        REQUEST_ID.set(request_id)
        if self.tracer is not None:
            tracer = self.tracer()
            attributes = {"http.request.method": req.method, "url.path": req.path} if tracer.enabled else {}
            context.span = tracer.request_span(req.env.get("HTTP_TRACEPARENT"), req.env.get("HTTP_TRACESTATE"),
                                               req.method, attributes)
            TRACE.set(context.span)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        context = req.context
        request_id = context.request_id  # set: this middleware comes first, so its process_request ran
        resp.set_header("X-Request-ID", request_id)
        seconds = time.perf_counter() - context.started
        route = req.uri_template or "unmatched"
        status = resp.status_code
        # A label from the client must be bounded: an odd method does not add a series per spelling.
        method = req.method if req.method in falcon.constants.COMBINED_METHODS else "OTHER"
        self.metrics.observe_request(route, method, status, seconds)
        if self.access_log:
            access.info(f"{req.method} {req.path} {status}", event="access", method=req.method, path=req.path,
                        status=status, durationMs=round(seconds * 1000, 3), workerPid=os.getpid())
        span = context.get("span")
        if span is not None:
            if span.recording:  # (off, nothing to end: no name or attributes are built)
                span.end(f"{method} {route}", **{"http.route": route, "http.response.status_code": status})
            TRACE.set(None)
        REQUEST_ID.set(None)


class BodyLimit:
    """Refuse a body over `max_bytes`: from its Content-Length before any of it is read, or, for a
    chunked body (no Content-Length; the server has decoded the chunks), while it is read.

    A chunked body within the limit is handed on as if it had come with its Content-Length,
    since Falcon reads nothing from a request without one.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        length = req.content_length
        if length is None and "chunked" in (req.get_header("Transfer-Encoding") or "").lower():
            body = req.stream.read(self.max_bytes + 1)
            length = len(body)
            if length <= self.max_bytes:
                req.env["CONTENT_LENGTH"] = str(length)
                req.env["wsgi.input"] = req.stream = io.BytesIO(body)
        if length is not None and length > self.max_bytes:
            raise falcon.HTTPContentTooLarge(description=f"The request body exceeds {self.max_bytes} bytes")


def presented_key(req: falcon.Request) -> str | None:
    auth = req.get_header("Authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return req.get_header("X-API-Key") or None


class ApiKeyAuth:
    """The routes in `protected` (URI templates, from the route table) need one of the configured keys.

    401 without a key, 403 with a wrong one. Every configured key is compared in
    constant time, so timing does not reveal which key or prefix matched.
    With no key configured every route is open (local development).
    """

    def __init__(self, keys: tuple[str, ...], protected: frozenset[str]):
        self.keys = [key.encode() for key in keys if key]
        self.protected = protected

    def allows(self, key: str) -> bool:
        candidate = key.encode()
        matched = False
        for known in self.keys:
            matched |= hmac.compare_digest(candidate, known)
        return matched

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         params: dict[str, Any]) -> None:
        if not self.keys or req.uri_template not in self.protected:
            return
        key = presented_key(req)
        if key is None:
            raise falcon.HTTPUnauthorized(description="An API key is required (Authorization: Bearer or X-API-Key)",
                                          challenges=["Bearer"])
        if not self.allows(key):
            raise falcon.HTTPForbidden(description="The API key is not valid")
