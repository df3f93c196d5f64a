"""The OpenAPI document: valid 3.1, generated from the models, covering every route of the app."""

from openapi_spec_validator import validate

from adapters.http.app import ROUTES, create_app
from adapters.http.openapi import openapi_document
from functions.jobs import JOB_TYPES
from functions.models import JobRecord
from tests.fakes import fake_deps


def app_routes() -> set[tuple[str, str]]:
    app = create_app(fake_deps())

    def walk(nodes):
        for node in nodes:
            if node.method_map:
                for method in node.method_map:
                    if hasattr(node.resource, f"on_{method.lower()}"):
                        yield method.lower(), node.uri_template
            yield from walk(node.children)

    return set(walk(app._router._roots))


def test_the_document_is_valid_openapi_31_and_covers_every_route():
    document = openapi_document(ROUTES)
    validate(document)
    assert document["openapi"] == "3.1.0"
    documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert documented == app_routes()


def test_schemas_come_from_the_models():
    document = openapi_document(ROUTES)
    schemas = document["components"]["schemas"]
    assert set(schemas["JobRecord"]["properties"]) == set(JobRecord.model_fields) | {"queue", "traceId"}  # computed
    variants = schemas["JobRequest"]["oneOf"]
    assert [v["properties"]["type"]["const"] for v in variants] == list(JOB_TYPES)
    post_jobs = document["paths"]["/jobs"]["post"]
    assert {"200", "202", "401", "403", "413", "415", "422", "503"} <= set(post_jobs["responses"])
    assert post_jobs["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert post_jobs["security"] and document["paths"]["/health"]["get"]["security"] == []
