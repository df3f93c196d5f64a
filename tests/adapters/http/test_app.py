"""The Falcon app over in-memory ports: the fast layer (no Redis). The same app over the
real Redis ports is tested in test_app_on_redis.py."""

import falcon.testing
import pytest

from adapters.http.app import ROUTES, create_app
from functions.errors import Unavailable
from functions.models import DeadJob
from tests.fakes import FixedProbe, MemoryDLQ, MemoryQueue, fake_deps
from tests.stats import template_figures

BODY = {"message": "Hello from queue!", "shouldFail": False}


@pytest.fixture
def queue():
    return MemoryQueue()


@pytest.fixture
def dlq():
    return MemoryDLQ([DeadJob(jobId="d1", type="message", payload={"message": "m", "shouldFail": True},
                              error="JobFailed: m", attempts=4, failedAt=1.0)])


@pytest.fixture
def client(queue, dlq):
    return falcon.testing.TestClient(create_app(fake_deps(jobs=queue, dlq=dlq)))


def assert_error(result, status, code):
    assert result.status_code == status, result.text
    assert result.json["code"] == code and result.json["message"]
    assert "Traceback" not in result.text


def test_root_and_health_come_from_the_injected_pid_clock_and_probe(client):
    assert client.simulate_get("/").json["workerPID"] == 4242
    health = client.simulate_get("/health")
    assert health.status_code == 200
    assert health.json == {"status": "ok", "uptime": 10.0, "workerPID": 4242, "dependencies": {"memory": "up"}}
    down = falcon.testing.TestClient(create_app(fake_deps(probe=FixedProbe(redis=False))))
    assert down.simulate_get("/health").status_code == 503


def test_post_job_stores_it_and_answers_202_with_its_location(client, queue):
    posted = client.simulate_post("/jobs", json=BODY)
    assert posted.status_code == 202 and posted.json == {"jobId": "default.job1", "status": "queued"}
    assert posted.headers["location"] == "/jobs/default.job1"
    assert queue.queue == ["default.job1"] and queue.get("default.job1").payload == BODY
    got = client.simulate_get("/jobs/default.job1")
    assert got.status_code == 200 and got.json["state"] == "queued" and got.json["createdAt"] == 1_700_000_000.0


def test_an_idempotent_repeat_is_200_and_writes_nothing_more(client, queue):
    headers = {"Idempotency-Key": "order-1"}
    assert client.simulate_post("/jobs", json=BODY, headers=headers).status_code == 202
    again = client.simulate_post("/jobs", json=BODY, headers=headers)
    assert again.status_code == 200 and again.json["jobId"] == "default.job1" and queue.queue == ["default.job1"]
    assert_error(client.simulate_post("/jobs", json={"message": "other"}, headers=headers), 422,
                 "idempotency_key_reused")
    assert_error(client.simulate_post("/jobs", json=BODY, headers={"Idempotency-Key": "has space"}), 422,
                 "validation_error")
    assert queue.queue == ["default.job1"]


@pytest.mark.parametrize("kwargs, status, code", [
    ({"body": "{not json", "headers": {"Content-Type": "application/json"}}, 400, "invalid_json"),
    ({"body": "[" * 100_000, "headers": {"Content-Type": "application/json"}}, 400, "invalid_json"),
    ({"body": "message=hi", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415,
     "unsupported_media_type"),
    ({"json": {"message": 1}}, 422, "validation_error"),
    ({"json": {"message": "x", "extra": 1}}, 422, "validation_error"),
    ({"json": {"type": "missing"}}, 422, "validation_error"),
    ({"body": "x" * (1024 * 1024 + 1), "headers": {"Content-Type": "application/json"}}, 413, "payload_too_large"),
])
def test_bad_job_requests_get_a_clear_error_and_write_nothing(client, queue, kwargs, status, code):
    assert_error(client.simulate_post("/jobs", **kwargs), status, code)
    assert queue.records == {} and queue.queue == []


def test_unknown_routes_ids_methods_and_pages(client):
    assert_error(client.simulate_get("/nope"), 404, "not_found")
    assert_error(client.simulate_get("/jobs/unknown"), 404, "not_found")
    assert_error(client.simulate_get("/jobs/" + "x" * 200), 404, "not_found")
    assert_error(client.simulate_delete("/jobs"), 405, "method_not_allowed")
    assert_error(client.simulate_get("/dlq", params={"limit": "101"}), 422, "validation_error")
    assert_error(client.simulate_get("/dlq", params={"offset": "x"}), 422, "validation_error")


def test_dlq_listing_and_a_replay_that_happens_once(client, queue, dlq):
    listed = client.simulate_get("/dlq")
    assert listed.json["total"] == 1 and listed.json["items"][0]["jobId"] == "d1"
    replayed = client.simulate_post("/dlq/d1/replay")
    assert replayed.status_code == 202 and replayed.headers["location"] == "/jobs/d1"
    assert dlq.count() == 0 and queue.queue == ["d1"] and queue.get("d1").attempts == 0
    assert_error(client.simulate_post("/dlq/d1/replay"), 404, "not_found")
    assert template_figures(client.simulate_get("/queue/stats").json) == {
        "waiting": 1, "active": 0, "completed": 0, "failed": 0, "delayed": 0, "dlq": 0, "dlqPending": 0}


def test_a_dependency_down_is_a_503_with_retry_after(dlq):
    class DownQueue(MemoryQueue):
        def submit(self, job, once=None):
            raise Unavailable("The job store is unavailable (ConnectionError)", dependency="redis")

    client = falcon.testing.TestClient(create_app(fake_deps(jobs=DownQueue(), dlq=dlq)))
    posted = client.simulate_post("/jobs", json=BODY)
    assert_error(posted, 503, "service_unavailable")
    assert posted.headers["retry-after"] == "1" and posted.json["details"] == {"dependency": "redis"}


def test_an_unexpected_error_is_a_logged_generic_500(caplog):
    class BrokenDLQ(MemoryDLQ):
        def count_by_queue(self):
            raise ZeroDivisionError("secret internals")

    client = falcon.testing.TestClient(create_app(fake_deps(dlq=BrokenDLQ())))
    result = client.simulate_get("/queue/stats")
    assert_error(result, 500, "internal_error")
    assert "secret" not in result.text
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


def concrete(path: str) -> str:
    """A route's path with its parameters filled in (a job id, a queue, a dashboard asset)."""
    return (path.replace("{job_id}", "d1").replace("{name}", "default")
            .replace("{asset}", "dashboard.js"))


@pytest.mark.parametrize("route", [r for r in ROUTES if any(op.method == "get" for op in r.operations)],
                         ids=lambda r: r.path)
def test_head_answers_on_every_get_route_with_get_s_status_and_headers_and_no_body(client, route):
    path = concrete(route.path)
    got, head = client.simulate_get(path), client.simulate_head(path)
    assert head.status_code == got.status_code and head.content == b""
    for name in ("content-type", "content-length", "content-security-policy"):
        assert head.headers.get(name) == got.headers.get(name), name


def test_head_where_there_is_no_get_is_405(client):
    result = client.simulate_head("/dlq/replay")  # POST only
    assert result.status_code == 405 and "HEAD" not in result.headers["allow"]


def test_liveness_and_readiness_ask_no_dependency_and_readiness_turns_503_while_draining():
    down = falcon.testing.TestClient(create_app(fake_deps(probe=FixedProbe(redis=False))))
    assert down.simulate_get("/health").status_code == 503  # the template's /health asks Redis
    assert down.simulate_get("/livez").json == {"status": "alive", "workerPID": 4242}
    assert down.simulate_get("/readyz").json == {"status": "ready", "workerPID": 4242}  # Redis left out
    draining = down.simulate_get("/readyz", extras={"forkline.draining": True})
    assert draining.status_code == 503 and draining.json == {"status": "draining", "workerPID": 4242}
    assert down.simulate_get("/livez", extras={"forkline.draining": True}).status_code == 200
