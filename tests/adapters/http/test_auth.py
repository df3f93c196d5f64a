"""API keys on the protected routes (real Redis ports behind the app)."""

import falcon.testing
import pytest

from adapters.http.app import ROUTES, AppDeps, create_app
from adapters.http.openapi import openapi_document
from functions.models import DeadJob

KEY = "k-3f9a1c0e5b7d"
# (method, route, what a request with a valid key must answer)
PROTECTED = [("POST", "/jobs", 202), ("GET", "/jobs/{job_id}", 200), ("DELETE", "/jobs/{job_id}", 200),
             ("GET", "/dlq", 200),
             ("POST", "/dlq/{job_id}/replay", 202), ("GET", "/workers", 200), ("GET", "/dlq/{job_id}", 200),
             ("DELETE", "/dlq/{job_id}", 204), ("POST", "/dlq/replay", 200), ("POST", "/dlq/purge", 200),
             ("POST", "/queues/{name}/pause", 200), ("POST", "/queues/{name}/resume", 200),
             ("DELETE", "/jobs/{job_id}/record", 204), ("GET", "/jobs", 200), ("GET", "/queue/history", 200),
             ("POST", "/jobs/{job_id}/promote", 200)]
PROTECTED += [("HEAD", route, success) for method, route, success in PROTECTED if method == "GET"]
VALID = ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}, {"X-API-Key": "other-key"},
         {"Authorization": f"bearer   {KEY}  "})


@pytest.fixture
def client(ports):
    deps = AppDeps(jobs=ports.jobs, dlq=ports.dlq, probe=ports.probe, max_attempts=4, api_keys=(KEY, "other-key"),
                   workers=ports.workers)
    return falcon.testing.TestClient(create_app(deps))


def call(client, ports, method, route, headers=None):
    """One request to `route`, with a real job or DLQ entry behind the path, so that success is possible."""
    body, path = None, route
    if route == "/jobs":
        body = {"message": "hi", "shouldFail": False}
    elif route == "/jobs/{job_id}":
        path = f"/jobs/{client.simulate_post('/jobs', json={'message': 'x'}, headers={'X-API-Key': KEY}).json['jobId']}"
    elif route == "/jobs/{job_id}/promote":  # a scheduled job: it can start now
        job_id = client.simulate_post("/jobs", json={"message": "x", "delay": 60}, headers={"X-API-Key": KEY}).json
        path = f"/jobs/{job_id['jobId']}/promote"
    elif route == "/jobs/{job_id}/record":  # a cancelled job: its record can be removed
        key = {"X-API-Key": KEY}
        job_id = client.simulate_post("/jobs", json={"message": "x", "delay": 60}, headers=key).json["jobId"]
        client.simulate_delete(f"/jobs/{job_id}", headers=key)
        path = f"/jobs/{job_id}/record"
    elif route in ("/dlq/{job_id}/replay", "/dlq/{job_id}"):
        dead = DeadJob(jobId=f"dead-{len(ports.dlq.list(0, 100))}", type="message", payload={"message": "m"},
                       error="E", attempts=4, failedAt=1.0)
        ports.dlq.put(dead)
        path = route.replace("{job_id}", dead.jobId)
    elif route == "/dlq/replay":
        body = {"dryRun": True}
    elif route == "/dlq/purge":
        body = {"confirm": True}
    elif route.startswith("/queues/"):
        path = route.replace("{name}", "slow")
    return client.simulate_request(method, path, json=body, headers=headers or {})


@pytest.mark.parametrize("method, route, success", PROTECTED)
def test_protected_routes(client, ports, method, route, success):
    missing = call(client, ports, method, route)
    assert missing.status_code == 401 and (method == "HEAD" or missing.json["code"] == "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = call(client, ports, method, route, {"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and (method == "HEAD" or wrong.json["code"] == "forbidden")
    assert call(client, ports, method, route, {"X-API-Key": KEY[:-1]}).status_code == 403
    assert call(client, ports, method, route, {"X-API-Key": KEY + "x"}).status_code == 403
    for headers in VALID:
        assert call(client, ports, method, route, headers).status_code == success, headers


def test_the_protected_list_is_every_protected_route_and_the_document_agrees(client):
    def walk(nodes):
        for node in nodes:
            if node.method_map:
                yield from ((m, node.uri_template) for m in node.method_map
                            if hasattr(node.resource, f"on_{m.lower()}"))
            yield from walk(node.children)

    tested = {(method, route) for method, route, _ in PROTECTED}
    protected_paths = {route.path for route in ROUTES if route.protected}
    assert tested == {(m, path) for m, path in walk(client.app._router._roots) if path in protected_paths}
    document = openapi_document(ROUTES)
    assert tested == {(method.upper(), path) for path, ops in document["paths"].items()
                      for method, op in ops.items() if op["security"]}


def test_open_routes_need_no_key(client):
    for path in ("/", "/health", "/queue/stats", "/openapi.json"):
        assert client.simulate_get(path).status_code == 200


def test_without_configured_keys_everything_is_open(ports):
    client = falcon.testing.TestClient(create_app(AppDeps(jobs=ports.jobs, dlq=ports.dlq, probe=ports.probe,
                                                          max_attempts=4)))
    for method, route, success in PROTECTED:
        assert call(client, ports, method, route).status_code == success


@pytest.mark.parametrize("metrics_auth, without_key", [(False, 200), (True, 401)])
def test_metrics_are_open_like_health_unless_metrics_auth(ports, metrics_auth, without_key):
    deps = AppDeps(jobs=ports.jobs, dlq=ports.dlq, probe=ports.probe, max_attempts=4, api_keys=(KEY,),
                   metrics_auth=metrics_auth)
    client = falcon.testing.TestClient(create_app(deps))
    assert client.simulate_get("/metrics").status_code == without_key
    assert client.simulate_get("/metrics", headers={"X-API-Key": KEY}).status_code == 200
    assert client.simulate_get("/health").status_code == 200
