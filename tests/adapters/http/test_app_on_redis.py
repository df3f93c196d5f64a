"""The Falcon app over the real Redis ports: every route, bad input written nowhere, Redis down."""

import falcon.testing
import pytest

from adapters.http.app import AppDeps, create_app
from adapters.redis import keys
from adapters.settings import Settings
from adapters.wiring import build_ports
from local.runtime.redis_server import free_port
from tests.stats import template_figures

DEFAULT = keys.queue_keys("default")

BODY = {"message": "Hello from queue!", "shouldFail": False}


@pytest.fixture
def client(ports, settings):
    deps = AppDeps(jobs=ports.jobs, dlq=ports.dlq, probe=ports.probe, max_attempts=settings.max_attempts)
    return falcon.testing.TestClient(create_app(deps))


def assert_error(result, status, code):
    assert result.status_code == status, result.text
    assert result.json["code"] == code and result.json["message"]
    assert "Traceback" not in result.text


def test_root_and_health(client):
    root = client.simulate_get("/")
    assert root.status_code == 200 and isinstance(root.json["workerPID"], int) and root.json["message"]
    health = client.simulate_get("/health")
    assert health.status_code == 200 and health.json["status"] == "ok" and health.json["uptime"] >= 0
    assert health.json["dependencies"] == {"redis": "up"}


def test_post_job_then_read_it_back(client, ports):
    posted = client.simulate_post("/jobs", json=BODY)
    assert posted.status_code == 202 and posted.json["status"] == "queued"
    job_id = posted.json["jobId"]
    assert posted.headers["location"] == f"/jobs/{job_id}"
    got = client.simulate_get(f"/jobs/{job_id}")
    assert got.status_code == 200
    assert got.json["state"] == "queued" and got.json["payload"] == BODY and got.json["attempts"] == 0
    assert template_figures(client.simulate_get("/queue/stats").json) == {
        "waiting": 1, "active": 0, "completed": 0, "failed": 0, "delayed": 0, "dlq": 0, "dlqPending": 0}


def test_idempotency_key_repeat_is_200_with_the_same_job(client, ports):
    headers = {"Idempotency-Key": "order-1234"}
    first = client.simulate_post("/jobs", json=BODY, headers=headers)
    again = client.simulate_post("/jobs", json=BODY, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json["jobId"] == first.json["jobId"] and again.headers["location"] == first.headers["location"]
    assert ports.redis.client.llen(DEFAULT.list) == 1
    other = client.simulate_post("/jobs", json={"message": "different"}, headers=headers)
    assert_error(other, 422, "idempotency_key_reused")
    assert other.json["details"] == {"jobId": first.json["jobId"]}
    assert ports.redis.client.llen(DEFAULT.list) == 1
    ttl = ports.redis.client.ttl(DEFAULT.idempotency("order-1234"))
    assert 0 < ttl <= ports.jobs.retention


@pytest.mark.parametrize("kwargs, status, code", [
    ({"body": "{not json", "headers": {"Content-Type": "application/json"}}, 400, "invalid_json"),
    ({"body": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}, 400, "invalid_json"),
    ({"body": "message=hi", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415,
     "unsupported_media_type"),
    ({"json": {"message": 1}}, 422, "validation_error"),
    ({"json": [BODY]}, 422, "validation_error"),
    ({"json": {"type": "missing", "message": "x"}}, 422, "validation_error"),
    ({"body": "x" * (1024 * 1024 + 1), "headers": {"Content-Type": "application/json"}}, 413,
     "payload_too_large"),
])
def test_bad_job_requests_get_a_clear_error_and_write_nothing(client, ports, kwargs, status, code):
    assert_error(client.simulate_post("/jobs", **kwargs), status, code)
    assert ports.redis.client.dbsize() == 0


def test_unknown_routes_ids_and_methods(client):
    assert_error(client.simulate_get("/nope"), 404, "not_found")
    assert_error(client.simulate_get("/jobs/doesnotexist"), 404, "not_found")
    assert_error(client.simulate_get("/jobs/" + "x" * 200), 404, "not_found")
    assert_error(client.simulate_delete("/jobs"), 405, "method_not_allowed")
    assert_error(client.simulate_post("/dlq/nothere/replay"), 404, "not_found")
    assert_error(client.simulate_get("/dlq", params={"limit": "0"}), 422, "validation_error")


def test_dlq_list_and_replay(client, ports):
    from functions.models import DeadJob

    ports.dlq.put(DeadJob(jobId="d1", type="message", payload={"message": "m", "shouldFail": True},
                          error="JobFailed: m", attempts=4, failedAt=1.0))
    listed = client.simulate_get("/dlq")
    assert listed.status_code == 200 and listed.json["total"] == 1
    assert listed.json["items"][0]["jobId"] == "d1" and listed.json["items"][0]["attempts"] == 4
    replayed = client.simulate_post("/dlq/d1/replay")
    assert replayed.status_code == 202 and replayed.json == {"jobId": "d1", "status": "queued"}
    assert client.simulate_get("/jobs/d1").json["state"] == "queued"
    assert client.simulate_get("/queue/stats").json["dlq"] == 0
    assert_error(client.simulate_post("/dlq/d1/replay"), 404, "not_found")


def test_an_unexpected_error_is_a_logged_generic_500(ports, settings, caplog):
    class Broken:
        """A DLQ whose every read fails with an error forkline does not expect."""

        def count(self):
            raise ZeroDivisionError("secret internals")

        count_by_queue = count

    deps = AppDeps(jobs=ports.jobs, dlq=Broken(), probe=ports.probe, max_attempts=4)
    with caplog.at_level("ERROR", logger="forkline.http"):
        result = falcon.testing.TestClient(create_app(deps)).simulate_get("/queue/stats")
    assert_error(result, 500, "internal_error")
    assert result.json["message"] == "Internal server error"
    assert "secret" not in result.text and "ZeroDivisionError" not in result.text and "Traceback" not in result.text
    [logged] = [r for r in caplog.records if r.name == "forkline.http" and r.exc_info]
    assert logged.exc_info[0] is ZeroDivisionError and str(logged.exc_info[1]) == "secret internals"
    assert logged.getMessage() == "unhandled error on GET /queue/stats" and logged.event == "unhandled_error"


def test_redis_down_means_503_with_retry_after_and_degraded_health(tmp_path):
    dead_url = f"redis://127.0.0.1:{free_port()}/0"
    ports = build_ports(Settings(redis_url=dead_url, _env_file=None))
    client = falcon.testing.TestClient(create_app(AppDeps(
        jobs=ports.jobs, dlq=ports.dlq, probe=ports.probe, max_attempts=4)))
    posted = client.simulate_post("/jobs", json=BODY)
    assert_error(posted, 503, "service_unavailable")
    assert posted.headers["retry-after"] == "1" and posted.json["details"] == {"dependency": "redis"}
    health = client.simulate_get("/health")
    assert health.status_code == 503 and health.json["status"] == "degraded"
    assert health.json["dependencies"] == {"redis": "down"}
    assert_error(client.simulate_get("/queue/stats"), 503, "service_unavailable")
