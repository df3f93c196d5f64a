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


class NotAcknowledged(Unavailable):
    """Written on the Redis primary but not acknowledged by REDIS_REPLICA_ACKS replicas in time: the
    write stays if the primary does and is lost if a replica takes over first. A retry with the same
    Idempotency-Key finds the job when it stayed and creates it when it did not: never two jobs."""

    def __init__(self, replicas: int, acknowledged: int, timeout_ms: int):
        super().__init__(f"Written but acknowledged by {acknowledged} of {replicas} replica(s) within {timeout_ms} ms; "
                         "retry with the same Idempotency-Key", dependency="redis replicas")
        self.details = {"dependency": "redis replicas", "acknowledged": acknowledged, "required": replicas}


class JobFailed(Exception):
    """Raised by a job function to fail the current attempt."""
