"""The DLQ routes on both backends: the Redis DLQ, and the SQS DLQ on moto (jobs on Redis)."""

import falcon.testing
import pytest

from adapters.aws.dlq import SQSDLQ
from adapters.http.app import AppDeps, create_app
from functions.models import DeadJob

NOW = 1_800_000_000.0


@pytest.fixture(params=["redis", "sqs"])
def backend(request, ports, aws):
    dlq = ports.dlq
    if request.param == "sqs":
        dlq = SQSDLQ(aws.create_queue(QueueName="forkline-dlq")["QueueUrl"])
    deps = AppDeps(jobs=ports.jobs, dlq=dlq, probe=ports.probe, max_attempts=4, max_replays=2,
                   clock=lambda: NOW)
    return falcon.testing.TestClient(create_app(deps)), dlq, ports.jobs


def dead(job_id, *, type_="message", error="JobFailed: boom", failed_at=1000.0, replays=0):
    return DeadJob(jobId=job_id, type=type_, payload={"message": job_id}, error=error, traceback="Traceback: x",
                   attempts=4, failedAt=failed_at, replays=replays)


def fill(dlq):
    for entry in (dead("a", failed_at=1000.0), dead("b", type_="sleep", failed_at=2000.0),
                  dead("c", error="JobTimeout: slow", failed_at=3000.0), dead("d", failed_at=4000.0, replays=2)):
        dlq.put(entry)


def ids(result):
    return [e["jobId"] for e in result.json["items"]]


def test_get_dlq_filters_by_type_error_and_failure_time(backend):
    client, dlq, _ = backend
    fill(dlq)
    assert ids(client.simulate_get("/dlq")) == ["a", "b", "c", "d"]
    assert ids(client.simulate_get("/dlq", params={"type": "message"})) == ["a", "c", "d"]
    assert ids(client.simulate_get("/dlq", params={"errorContains": "Timeout"})) == ["c"]
    assert ids(client.simulate_get("/dlq", params={"failedAfter": "2000", "failedBefore": "4000"})) == ["b", "c"]
    page = client.simulate_get("/dlq", params={"type": "message", "limit": "1", "offset": "1"})
    assert ids(page) == ["c"] and page.json["total"] == 3
    bad = client.simulate_get("/dlq", params={"failedAfter": "yesterday"})
    assert bad.status_code == 422 and bad.json["details"][0]["field"] == "failedAfter"


def test_show_and_delete_one(backend):
    client, dlq, _ = backend
    fill(dlq)
    shown = client.simulate_get("/dlq/c")
    assert shown.status_code == 200 and shown.json["traceback"] == "Traceback: x"
    assert client.simulate_delete("/dlq/c").status_code == 204
    assert client.simulate_delete("/dlq/c").status_code == 404
    assert client.simulate_get("/dlq/c").status_code == 404
    assert ids(client.simulate_get("/dlq")) == ["a", "b", "d"]


def test_bulk_replay_dry_run_limit_and_the_replay_cap(backend):
    client, dlq, jobs = backend
    fill(dlq)
    dry = client.simulate_post("/dlq/replay", json={"type": "message", "dryRun": True})
    assert dry.status_code == 200
    assert dry.json == {"matched": 3, "replayed": 0, "skipped": 1, "jobIds": ["a", "c"], "skippedIds": ["d"],
                        "remaining": 2, "complete": True}
    assert ids(client.simulate_get("/dlq")) == ["a", "b", "c", "d"] and jobs.counts()["default"]["waiting"] == 0
    first = client.simulate_post("/dlq/replay", json={"type": "message", "limit": 1}).json
    assert (first["replayed"], first["jobIds"], first["remaining"]) == (1, ["a"], 1)
    second = client.simulate_post("/dlq/replay", json={"type": "message"}).json
    assert (second["replayed"], second["jobIds"], second["remaining"], second["skippedIds"]) == (1, ["c"], 0, ["d"])
    assert ids(client.simulate_get("/dlq")) == ["b", "d"]  # d: replayed twice already (DLQ_MAX_REPLAYS=2)
    assert jobs.counts()["default"]["waiting"] == 2
    record = jobs.get("a")
    assert record.state == "queued" and record.attempts == 0 and record.replays == 1 and record.createdAt == NOW
    again = client.simulate_post("/dlq/replay", json={"type": "message"}).json
    assert again["replayed"] == 0 and jobs.counts()["default"]["waiting"] == 2  # each job replayed once


def test_purge_needs_confirm_and_removes_only_matches(backend):
    client, dlq, _ = backend
    fill(dlq)
    refused = client.simulate_post("/dlq/purge", json={"type": "message"})
    assert refused.status_code == 422 and refused.json["details"][0]["field"] == "confirm"
    assert len(ids(client.simulate_get("/dlq"))) == 4
    done = client.simulate_post("/dlq/purge", json={"type": "message", "confirm": True})
    assert done.json == {"purged": 3, "remaining": 0, "complete": True}
    assert ids(client.simulate_get("/dlq")) == ["b"]


@pytest.mark.parametrize("body", [[], {"limit": 0}, {"limit": 101}, {"dryRun": "maybe"}, {"unknown": 1},
                                  {"failedAfter": -1}])
def test_bad_replay_bodies_are_422_and_touch_nothing(backend, body):
    client, dlq, _ = backend
    fill(dlq)
    result = client.simulate_post("/dlq/replay", json=body)
    assert result.status_code == 422 and result.json["code"] == "validation_error"
    assert len(ids(client.simulate_get("/dlq"))) == 4


def test_every_queues_dlq_is_merged_in_failure_order_and_filtered_by_queue(backend):
    client, dlq, jobs = backend
    for entry in (dead("default.a", failed_at=1000.0), dead("slow.b", type_="sleep", failed_at=2000.0),
                  dead("c", failed_at=3000.0), dead("slow.d", type_="sleep", failed_at=4000.0)):
        dlq.put(entry)  # "c": an id from before named queues, a `default` job
    assert ids(client.simulate_get("/dlq")) == ["default.a", "slow.b", "c", "slow.d"]
    assert [e["queue"] for e in client.simulate_get("/dlq").json["items"]] == ["default", "slow", "default", "slow"]
    page = client.simulate_get("/dlq", params={"limit": "2", "offset": "1"})  # a page across the queues
    assert ids(page) == ["slow.b", "c"] and page.json["total"] == 4
    assert ids(client.simulate_get("/dlq", params={"queue": "slow"})) == ["slow.b", "slow.d"]
    assert ids(client.simulate_get("/dlq", params={"queue": "default"})) == ["default.a", "c"]
    if isinstance(dlq, SQSDLQ):
        assert dlq.count_by_queue() is None  # one SQS queue for every queue's dead jobs
    else:
        assert dlq.count_by_queue() == {"default": 2, "slow": 2}
        stats = client.simulate_get("/queue/stats").json
        assert (stats["dlq"], stats["queues"]["slow"]["dlq"], stats["queues"]["default"]["dlq"]) == (4, 2, 2)
    assert client.simulate_post("/dlq/slow.d/replay").status_code == 202  # back to its own queue
    assert jobs.get("slow.d").queue == "slow" and jobs.counts()["slow"]["waiting"] == 1
    assert jobs.counts()["default"]["waiting"] == 0
