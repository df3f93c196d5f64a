"""Traces on the cloud pairing, in process (moto): the HTTP function's request span is the parent of
every attempt the jobs function makes of its job, the trace context travelling in the SQS message."""

import json

from opentelemetry.trace import SpanKind

from tests.adapters.aws.lambda_events import call, rest_get, run_jobs, v2

TRACE, CALLER = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"



def test_the_attempts_of_a_job_are_children_of_the_request_that_submitted_it(cloud, monkeypatch, spans):
    monkeypatch.setenv("JOB_BACKOFF_BASE", "0")
    status, accepted, _ = call(v2("POST", "/jobs", json.dumps({"message": "boom", "shouldFail": True}),
                                  headers={"traceparent": f"00-{TRACE}-{CALLER}-01"}))
    assert status == 202
    [server] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    request_span = f"{server.context.span_id:016x}"
    assert f"{server.context.trace_id:032x}" == TRACE and f"{server.parent.span_id:016x}" == CALLER
    event, _ = run_jobs(cloud)
    assert json.loads(event["Records"][0]["body"])["traceparent"] == f"00-{TRACE}-{request_span}-01"
    run_jobs(cloud)
    attempts = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert [(s.attributes["forkline.job.attempt"], s.attributes["forkline.job.outcome"]) for s in attempts] == [
        (1, "retried"), (2, "retried")]
    assert all(f"{s.context.trace_id:032x}" == TRACE and f"{s.parent.span_id:016x}" == request_span
               for s in attempts)
    assert rest_get(f"/jobs/{accepted['jobId']}")[1]["traceId"] == TRACE
