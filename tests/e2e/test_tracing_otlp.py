"""Traces over OTLP/HTTP from a real `forkline run` (tracing on by OTEL_EXPORTER_OTLP_ENDPOINT) to a receiver
inside the test that decodes each export with opentelemetry-proto: the request's span (a child of the
caller's traceparent) and the job attempt's span (its child) arrive with forkline's resource and job
attributes, and the log lines of both carry their traceId and spanId."""

import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from harness.processes import Forkline, wait_until

TRACE, CALLER = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.spans: list[tuple[dict, object]] = []  # (resource attributes, span)
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        export = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            for resource_spans in export.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    self.server.spans += [(resource, span) for span in scope.spans]
        body = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def attributes(span) -> dict:
    return {a.key: (a.value.string_value or a.value.int_value) for a in span.attributes}


def test_a_request_and_its_jobs_attempt_arrive_as_one_trace_over_otlp_http(tmp_path, redis_url, receiver):
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    fl = Forkline("run", tmp_path, {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "2", "LOG_LEVEL": "debug",
                                    "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"})
    fl.start(timeout=30)
    try:
        status, _, body = fl.request("POST", "/jobs", {"message": "traced"},
                                     headers={"traceparent": f"00-{TRACE}-{CALLER}-01"})
        assert status == 202
        job_id = body["jobId"]

        def both():
            with receiver.lock:
                ours = [(r, s) for r, s in receiver.spans if s.trace_id.hex() == TRACE]
            return ours if {s.name for _, s in ours} >= {"POST /jobs", "job message"} else None

        spans = wait_until(both, 30, 0.2, "the request's and the attempt's spans exported")
        [(resource, server)] = [(r, s) for r, s in spans if s.name == "POST /jobs"]
        [(_, attempt)] = [(r, s) for r, s in spans if s.name == "job message"]
        assert resource["service.name"] == "forkline"
        assert server.parent_span_id.hex() == CALLER and attributes(server)["http.response.status_code"] == 202
        assert attempt.parent_span_id == server.span_id
        assert attributes(attempt) | {"forkline.job.id": job_id} == attributes(attempt)
        assert (attributes(attempt)["forkline.job.outcome"], attributes(attempt)["forkline.job.attempt"]) == (
            "completed", 1)

        lines = [json.loads(line) for line in fl.output().splitlines() if line.startswith("{")]
        [accepted] = [line for line in lines if line.get("event") == "job_accepted"]
        [completed] = [line for line in lines if line.get("event") == "job_completed"]
        assert (accepted["traceId"], accepted["spanId"]) == (TRACE, server.span_id.hex())
        assert (completed["traceId"], completed["spanId"]) == (TRACE, attempt.span_id.hex())
    finally:
        assert fl.stop(signal.SIGTERM, timeout=40) == 0, fl.output()[-3000:]
