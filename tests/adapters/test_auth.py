"""API keys on the protected routes (real Redis ports behind the app)."""

import falcon.testing
import pytest

from adapters.app import AppDeps, create_app

KEY = "k-3f9a1c0e5b7d"
PROTECTED = [("POST", "/jobs"), ("GET", "/jobs/abc"), ("GET", "/dlq"), ("POST", "/dlq/abc/replay")]


@pytest.fixture
def client(ports):
    deps = AppDeps(jobs=ports.jobs, dlq=ports.dlq, probe=ports.probe, max_attempts=4, api_keys=(KEY, "other-key"))
    return falcon.testing.TestClient(create_app(deps))


def call(client, method, path, headers=None):
    body = {"message": "hi", "shouldFail": False} if method == "POST" and path == "/jobs" else None
    return client.simulate_request(method, path, json=body, headers=headers or {})


@pytest.mark.parametrize("method, path", PROTECTED)
def test_protected_routes(client, method, path):
    missing = call(client, method, path)
    assert missing.status_code == 401 and missing.json["code"] == "unauthorized"
    wrong = call(client, method, path, {"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json["code"] == "forbidden"
    assert call(client, method, path, {"X-API-Key": KEY[:-1]}).status_code == 403
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}, {"X-API-Key": "other-key"}):
        assert call(client, method, path, headers).status_code not in (401, 403)


def test_the_protected_list_is_every_protected_route_and_the_document_agrees(client):
    from adapters.openapi import OPERATIONS

    def walk(nodes):
        for node in nodes:
            if node.method_map and getattr(node.resource, "protected", False):
                yield from ((m, node.uri_template) for m in node.method_map if hasattr(node.resource, f"on_{m.lower()}"))
            yield from walk(node.children)

    tested = {(method, path.replace("abc", "{job_id}")) for method, path in PROTECTED}
    assert tested == set(walk(client.app._router._roots))
    assert tested == {(op.method.upper(), op.path) for op in OPERATIONS if op.protected}


def test_open_routes_need_no_key(client):
    for path in ("/", "/health", "/queue/stats", "/openapi.json"):
        assert client.simulate_get(path).status_code == 200


def test_without_configured_keys_everything_is_open(ports):
    deps = AppDeps(jobs=ports.jobs, dlq=ports.dlq, probe=ports.probe, max_attempts=4)
    client = falcon.testing.TestClient(create_app(deps))
    assert call(client, "POST", "/jobs").status_code == 202
