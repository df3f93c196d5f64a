"""GET /openapi.json: an OpenAPI 3.1 document generated from the route table and the pydantic models."""

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from adapters.http.operations import Operation, Route
from functions.jobs import JOB_TYPES, QUEUE_NAME_PATTERN
from functions.limits import (
    IDEMPOTENCY_KEY_PATTERN,
    JOB_ID_PATTERN,
    MAX_BODY_BYTES,
    PAGE_DEFAULT,
    PAGE_MAX,
    REQUEST_ID_PATTERN,
)
from functions.models import ErrorBody, JobRequest

REF = "#/components/schemas/{model}"
_ERRORS = {
    400: "Malformed request (invalid JSON, missing body)",
    401: "No API key",
    403: "Wrong API key",
    404: "Not found",
    409: "The resource's state does not allow it (`details.state`)",
    413: f"Body over {MAX_BODY_BYTES} bytes (from Content-Length, or as a chunked body is read)",
    415: "Content type is not application/json",
    422: "Invalid input; `details` names the fields",
    500: "Unexpected error (logged; no detail is returned)",
    503: "A dependency (Redis, SQS, DynamoDB) is unreachable; retry after `Retry-After` seconds",
}
REQUEST_ID_HEADER = {"description": "The request's id: the client's X-Request-ID when valid, else a new one",
                     "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN}}
JOB_ID_PARAMETER = {"name": "job_id", "in": "path", "required": True,
                    "schema": {"type": "string", "pattern": JOB_ID_PATTERN}}
PAGE_PARAMETERS = (
    {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0, "default": 0}},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_MAX, "default": PAGE_DEFAULT}},
)
QUEUE_PARAMETER = {"name": "name", "in": "path", "required": True, "description": "a declared queue's name",
                   "schema": {"type": "string", "pattern": QUEUE_NAME_PATTERN}}
FILTER_PARAMETERS = (
    {"name": "type", "in": "query", "required": False, "schema": {"type": "string", "minLength": 1, "maxLength": 64}},
    {"name": "queue", "in": "query", "required": False, "description": "one named queue's entries",
     "schema": {"type": "string", "minLength": 1, "maxLength": 32}},
    {"name": "errorContains", "in": "query", "required": False,
     "schema": {"type": "string", "minLength": 1, "maxLength": 200}},
    {"name": "failedAfter", "in": "query", "required": False, "schema": {"type": "number", "minimum": 0}},
    {"name": "failedBefore", "in": "query", "required": False, "schema": {"type": "number", "minimum": 0}},
)
IDEMPOTENCY_PARAMETER = {"name": "Idempotency-Key", "in": "header", "required": False,
                         "description": "Repeat within JOB_RETENTION: 200 with the first jobId, nothing enqueued",
                         "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN}}


def query_parameters(model: type[BaseModel]) -> tuple[dict[str, Any], ...]:
    """A query model's fields as optional query parameters (the null of an optional field left out)."""
    parameters = []
    for name, schema in model.model_json_schema()["properties"].items():
        schema = dict(schema)
        variants = [v for v in schema.pop("anyOf", []) if v.get("type") != "null"]
        if variants:
            schema.update(variants[0])
        schema.pop("title", None)
        if schema.get("default", 0) is None:
            schema.pop("default")
        description = schema.pop("description", None)
        parameter = {"name": name, "in": "query", "required": False, "schema": schema}
        parameters.append({**parameter, "description": description} if description else parameter)
    return tuple(parameters)


def job_request_schema() -> dict[str, Any]:
    """POST /jobs body: one variant per registered job type (`type` defaults to `message`)."""
    variants = []
    timing = {name: JobRequest.model_json_schema()["properties"][name] for name in ("delay", "runAt", "priority")}
    for job_type in JOB_TYPES.values():
        schema = job_type.payload_model.model_json_schema()
        schema.pop("title", None)
        schema["properties"] = {"type": {"const": job_type.name}, **timing, **schema.get("properties", {})}
        if job_type.name != "message":
            schema["required"] = ["type", *schema.get("required", [])]
        schema["title"] = f"{job_type.name} job"
        schema["description"] = f"runs in the `{job_type.queue}` queue"
        variants.append(schema)
    return {"oneOf": variants}


def _json(ref: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def _responses(op: Operation, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in op.ok.items():
        if status == 204:
            responses[str(status)] = {"description": op.summary}
        elif isinstance(model, dict):
            responses[str(status)] = {"description": op.summary, "content": {op.media: {"schema": model}}}
        else:
            responses[str(status)] = {"description": model.__doc__ or model.__name__, "content": _json(refs[model])}
        if status == 202:
            responses[str(status)]["headers"] = {"Location": {"schema": {"type": "string"}}}
    for status in op.errors:
        responses[str(status)] = {"description": _ERRORS[status], "content": _json(refs[ErrorBody])}
        if status == 503:
            responses[str(status)]["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    for response in responses.values():
        response.setdefault("headers", {})["X-Request-ID"] = REQUEST_ID_HEADER
    return responses


def _models(routes: Iterable[Route]) -> list[type[BaseModel]]:
    found: dict[type[BaseModel], None] = {}
    for route in routes:
        for op in route.operations:
            found.update((m, None) for m in op.ok.values() if isinstance(m, type))
            if op.body is not None and op.body is not JobRequest:
                found[op.body] = None
    return [*found, ErrorBody]


def openapi_document(routes: tuple[Route, ...], title: str = "forkline", version: str = "0.1.0") -> dict[str, Any]:
    models = _models(routes)
    refs, defs = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    schemas = dict(defs.get("$defs", {}))
    schemas["JobRequest"] = job_request_schema()
    model_refs = {m: refs[(m, "serialization")] for m in models}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        for op in route.operations:
            entry: dict[str, Any] = {"summary": op.summary, "operationId": f"{op.method}{route.path}",
                                     "responses": _responses(op, model_refs)}
            if op.parameters:
                entry["parameters"] = list(op.parameters)
            if op.body is JobRequest:
                entry["requestBody"] = {"required": True, "content": _json({"$ref": REF.format(model="JobRequest")})}
            elif op.body is not None:
                entry["requestBody"] = {"required": True, "content": _json(model_refs[op.body])}
            entry["security"] = [{"bearer": []}, {"apiKey": []}] if route.protected else []
            paths.setdefault(route.path, {})[op.method] = entry
            if op.method == "get":  # create_app answers HEAD on every GET route: its statuses, no body
                bodiless = {code: {"description": r["description"]} for code, r in entry["responses"].items()}
                head = {**entry, "summary": f"{op.summary} (headers only)", "operationId": f"head{route.path}",
                        "responses": bodiless}
                paths[route.path]["head"] = head
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
