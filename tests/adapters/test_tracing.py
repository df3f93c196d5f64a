"""Traces on Redis, in process: the app and the consumer with the OpenTelemetry SDK and its in-memory
exporter. A request with a traceparent -> its job's attempts share its trace and are children of the
request's span, one span per attempt with its outcome; a request without -> a fresh trace."""

import time

import falcon.testing
from opentelemetry.trace import SpanKind

from adapters.wiring import build_app, configure_consumer
from tests.adapters.huey.steps import huey, promote_due, work_one

TRACE, CALLER = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"



def hexes(span_context):
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


def test_a_requests_trace_reaches_every_attempt_of_its_job(settings, spans):
    client = falcon.testing.TestClient(build_app(settings))
    configure_consumer(settings)
    answer = client.simulate_post("/jobs", json={"message": "boom", "shouldFail": True},
                                  headers={"traceparent": f"00-{TRACE}-{CALLER}-01", "tracestate": "congo=t61"})
    job_id = answer.json["jobId"]
    record = client.simulate_get(f"/jobs/{job_id}").json
    [server] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER and s.name == "POST /jobs"]
    trace_id, request_span = hexes(server.context)
    assert trace_id == TRACE and f"{server.parent.span_id:016x}" == CALLER and server.parent.is_remote
    assert server.attributes["http.response.status_code"] == 202
    assert (record["traceId"], record["traceparent"], record["tracestate"]) == (
        TRACE, f"00-{TRACE}-{request_span}-01", "congo=t61")

    work_one()
    time.sleep(max(0.0, client.simulate_get(f"/jobs/{job_id}").json["nextAttemptAt"] - time.time()) + 0.05)
    promote_due()
    work_one()
    attempts = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert [s.attributes["forkline.job.attempt"] for s in attempts] == [1, 2]
    assert [s.attributes["forkline.job.outcome"] for s in attempts] == ["retried", "retried"]
    for span in attempts:
        assert hexes(span.context)[0] == TRACE and f"{span.parent.span_id:016x}" == request_span
        assert (span.name, span.attributes["forkline.job.id"], span.attributes["forkline.job.queue"]) == (
            "job message", job_id, "default")
        assert span.context.trace_state.to_header() == "congo=t61"
    assert len({s.context.span_id for s in attempts}) == 2  # one span per attempt


def test_a_job_submitted_without_a_traceparent_starts_its_own_trace(settings, spans):
    client = falcon.testing.TestClient(build_app(settings))
    configure_consumer(settings)
    job_id = client.simulate_post("/jobs", json={"message": "fine"}, headers={"traceparent": "00-bad"}).json["jobId"]
    work_one(huey)
    [server] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    [attempt] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert server.parent is None and hexes(server.context)[0] != TRACE
    assert hexes(attempt.context)[0] == hexes(server.context)[0]
    assert attempt.attributes["forkline.job.outcome"] == "completed"
    assert client.simulate_get(f"/jobs/{job_id}").json["traceId"] == hexes(server.context)[0]


def test_off_a_request_still_carries_ids_to_its_job_and_nothing_is_exported(settings):
    client = falcon.testing.TestClient(build_app(settings))  # the process's tracing: off (no OTEL_*)
    job_id = client.simulate_post("/jobs", json={"message": "fine"},
                                  headers={"traceparent": f"00-{TRACE}-{CALLER}-01"}).json["jobId"]
    record = client.simulate_get(f"/jobs/{job_id}").json
    assert record["traceId"] == TRACE and record["traceparent"].split("-")[2] != CALLER


def test_a_replay_makes_the_replaying_request_the_parent_of_the_next_attempts(settings, ports):
    from functions.models import DeadJob

    ports.dlq.put(DeadJob(jobId="default.replayed", type="message", payload={"message": "again"}, error="E",
                          attempts=4, failedAt=time.time()))
    client = falcon.testing.TestClient(build_app(settings))
    assert client.simulate_post("/dlq/default.replayed/replay",
                                headers={"traceparent": f"00-{TRACE}-{CALLER}-01"}).status_code == 202
    record = client.simulate_get("/jobs/default.replayed").json
    assert record["traceId"] == TRACE and record["replays"] == 1
