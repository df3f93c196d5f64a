"""One error handler per family, each rendering {code, message[, details]}."""

import logging
from collections.abc import Mapping

import falcon

from functions.errors import DomainError

log = logging.getLogger("forkline.http")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    431: "headers_too_large",
    500: "internal_error",
    503: "service_unavailable",
}


def _render(resp: falcon.Response, status: int, code: str, message: str, details=None) -> None:
    resp.status = status
    body = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    resp.media = body


def handle_domain_error(req: falcon.Request, resp: falcon.Response, ex: DomainError, params) -> None:
    if ex.retry_after is not None:
        resp.set_header("Retry-After", str(ex.retry_after))
    if ex.status >= 500:  # per request at debug: the outage itself is logged once, when it starts
        log.debug("%s %s -> %d %s", req.method, req.path, ex.status, ex.message,
                  extra={"event": "dependency_error", "code": ex.code})
    _render(resp, ex.status, ex.code, ex.message, ex.details)


def handle_http_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params) -> None:
    status = ex.status_code
    if isinstance(ex, falcon.MediaMalformedError):
        code, message = "invalid_json", "The request body is not valid JSON"
    else:
        code = _CODES.get(status, "http_error")
        message = ex.description or ex.title or code
    headers = ex.headers or {}
    for name, value in headers.items() if isinstance(headers, Mapping) else headers:
        resp.set_header(name, value)
    _render(resp, status, code, message)


def handle_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params) -> None:
    log.exception("unhandled error on %s %s", req.method, req.path, extra={"event": "unhandled_error"})
    _render(resp, 500, "internal_error", "Internal server error")


def register_error_handlers(app: falcon.App) -> None:
    # Falcon picks the most specific registered class, so the order here does not matter.
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(DomainError, handle_domain_error)
