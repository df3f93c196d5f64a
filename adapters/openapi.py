"""GET /openapi.json: an OpenAPI 3.1 document generated from the pydantic models.

Every operation is listed once in OPERATIONS; a test checks that the list and
the routes of `create_app` are the same set.
"""

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from functions.jobs import JOB_TYPES
from functions.models import (
    DeadJobPage,
    ErrorBody,
    Health,
    JobAccepted,
    JobRecord,
    QueueStats,
    Replayed,
    Welcome,
)

REF = "#/components/schemas/{model}"
_ERRORS = {
    400: "Malformed request (invalid JSON, missing body)",
    401: "No API key",
    403: "Wrong API key",
    404: "Not found",
    413: "Body over 1 MiB (from Content-Length)",
    415: "Content type is not application/json",
    422: "Invalid input; `details` names the fields",
    500: "Unexpected error (logged; no detail is returned)",
    501: "Not supported by the configured backend",
    503: "A dependency (Redis, SQS) is unreachable; retry after `Retry-After` seconds",
}
_JOB_ID = {"name": "job_id", "in": "path", "required": True,
           "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}
_PAGE = [
    {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0, "default": 0}},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
]
_IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
                "description": "Repeat within JOB_RETENTION: 200 with the first jobId, nothing enqueued",
                "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"}}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    ok: dict[int, type[BaseModel] | dict[str, Any]]  # a model, or an inline JSON schema
    errors: tuple[int, ...] = (500,)
    protected: bool = False
    parameters: tuple[dict, ...] = ()
    body: bool = False


OPERATIONS = (
    Operation("get", "/", "Welcome, and the pid of the serving worker", {200: Welcome}),
    Operation("get", "/health", "Health of this worker and its dependencies", {200: Health, 503: Health}),
    Operation("post", "/jobs", "Submit a job", {202: JobAccepted, 200: JobAccepted},
              (400, 401, 403, 413, 415, 422, 500, 501, 503), protected=True, parameters=(_IDEMPOTENCY,), body=True),
    Operation("get", "/jobs/{job_id}", "A job's state and result", {200: JobRecord}, (401, 403, 404, 500, 503),
              protected=True, parameters=(_JOB_ID,)),
    Operation("get", "/queue/stats", "Queue counts", {200: QueueStats}, (500, 503)),
    Operation("get", "/dlq", "Dead-letter queue, oldest failure first", {200: DeadJobPage},
              (400, 401, 403, 422, 500, 503), protected=True, parameters=tuple(_PAGE)),
    Operation("post", "/dlq/{job_id}/replay", "Put a dead job back on the queue", {202: Replayed},
              (401, 403, 404, 500, 503), protected=True, parameters=(_JOB_ID,)),
    Operation("get", "/openapi.json", "This document", {200: {"type": "object"}}),
)


def job_request_schema() -> dict[str, Any]:
    """POST /jobs body: one variant per registered job type (`type` defaults to `message`)."""
    variants = []
    for job_type in JOB_TYPES.values():
        schema = job_type.payload_model.model_json_schema()
        schema.pop("title", None)
        schema["properties"] = {"type": {"const": job_type.name}, **schema.get("properties", {})}
        if job_type.name != "message":
            schema["required"] = ["type", *schema.get("required", [])]
        schema["title"] = f"{job_type.name} job"
        variants.append(schema)
    return {"oneOf": variants}


def _json(ref: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def _responses(op: Operation, refs: dict[type[BaseModel], dict]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in op.ok.items():
        if isinstance(model, dict):
            responses[str(status)] = {"description": op.summary, "content": _json(model)}
        else:
            responses[str(status)] = {"description": model.__doc__ or model.__name__, "content": _json(refs[model])}
        if status == 202:
            responses[str(status)]["headers"] = {"Location": {"schema": {"type": "string"}}}
    for status in op.errors:
        responses[str(status)] = {"description": _ERRORS[status], "content": _json(refs[ErrorBody])}
        if status == 503:
            responses[str(status)]["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    return responses


def openapi_document(title: str = "forkline", version: str = "0.1.0") -> dict[str, Any]:
    models = [Welcome, Health, JobAccepted, JobRecord, QueueStats, DeadJobPage, Replayed, ErrorBody]
    refs, defs = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    schemas = dict(defs.get("$defs", {}))
    schemas["JobRequest"] = job_request_schema()
    model_refs = {m: refs[(m, "serialization")] for m in models}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        entry: dict[str, Any] = {"summary": op.summary, "operationId": f"{op.method}{op.path}",
                                 "responses": _responses(op, model_refs)}
        if op.parameters:
            entry["parameters"] = list(op.parameters)
        if op.body:
            entry["requestBody"] = {"required": True, "content": _json({"$ref": REF.format(model="JobRequest")})}
        entry["security"] = [{"bearer": []}, {"apiKey": []}] if op.protected else []
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "A multi-core API with a background job queue. Protected operations need an "
                                "API key when the server has API_KEYS set."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
