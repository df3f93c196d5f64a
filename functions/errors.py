"""Domain errors. Each carries a stable code and the HTTP status it maps to."""

from typing import Any

from pydantic import ValidationError


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """A pydantic error as the `details` of a 422: one {field, error} per problem."""
    return [{"field": ".".join(str(p) for p in e["loc"]), "error": e["msg"]} for e in exc.errors()]


class DomainError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, details: Any = None, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.retry_after = retry_after


class InvalidInput(DomainError):
    status = 422
    code = "validation_error"


class KeyReused(DomainError):
    """An Idempotency-Key sent again with a different request."""

    status = 422
    code = "idempotency_key_reused"


class Conflict(DomainError):
    """The resource's state does not allow the request (a job that has started cannot be cancelled)."""

    status = 409
    code = "conflict"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Unavailable(DomainError):
    """A dependency (Redis, SQS) cannot be reached; the client may retry."""

    status = 503
    code = "service_unavailable"

    def __init__(self, message: str, dependency: str, retry_after: int = 1):
        super().__init__(message, details={"dependency": dependency}, retry_after=retry_after)
        self.dependency = dependency


class JobFailed(Exception):
    """Raised by a job function to fail the current attempt."""
