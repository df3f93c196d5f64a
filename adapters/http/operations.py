"""The shape of the route table: a route (path, resource, protected) and its operations."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Operation:
    method: str  # lower case, as OpenAPI writes it
    summary: str
    ok: dict[int, type[BaseModel] | dict[str, Any]]  # a model, or an inline JSON schema
    errors: tuple[int, ...] = (500,)
    parameters: tuple[dict[str, Any], ...] = ()
    body: type[BaseModel] | None = None  # the JSON body's model (JobRequest: its schema is built per job type)
    media: str = "application/json"  # of the success responses; errors are always JSON


@dataclass(frozen=True)
class Route:
    """One path: how its resource is built from the app's deps, whether it needs an API key, its operations."""

    path: str
    resource: Callable[[Any], object]  # AppDeps -> the resource (adapters/http/app.py)
    operations: tuple[Operation, ...]
    protected: bool = False
