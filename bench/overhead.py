"""What the observability adds per request and per job, timed in-process (a benchmark, not a test).

    .venv/bin/python bench/overhead.py            # also run by `make bench`: tracing off, as by default
    .venv/bin/python bench/overhead.py --tracing  # tracing on: the SDK's spans, batched, exported nowhere

Per request: what the request-id middleware adds to a Falcon app's call (read or make
the id, set the log context, send the header, count the request and its latency, its span),
as the difference between the same app with and without it. Per job: its lifecycle lines
(accepted and completed at info, started at debug, filtered out at the default
LOG_LEVEL=info) and its metrics (enqueued, started, time in queue, completed, duration), written as in
production: JSON to a day file and to stdout (here /dev/null), metrics in
prometheus_client's multiprocess files.
Budgets: 8 us per request, 25 us per job. Prints a table and one JSON line.
"""

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="forkline-bench-metrics-")  # before the import

import falcon  # noqa: E402
import falcon.testing  # noqa: E402

from adapters.http.middleware import RequestContext  # noqa: E402
from adapters.logs import TRACE, FastLogger, setup_logging  # noqa: E402
from adapters.metrics import PrometheusMetrics  # noqa: E402
from adapters.tracing import OpenTelemetryTracing, attempt_span, tracing, use_tracing  # noqa: E402

BUDGET_REQUEST_US, BUDGET_JOB_US = 8.0, 25.0
N = 20000


def per_call_us(fns: list, n: int = N, rounds: int = 15) -> list[tuple[float, float]]:
    """For each function, (best, median) over `rounds` of the mean cost of one call in
    microseconds, the functions' rounds interleaved so that the machine's other load falls on
    all of them alike. The best is the cost itself (timeit's advice); the median shows the load."""
    timings: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, times in zip(fns, timings, strict=True):
            started = time.perf_counter()
            for _ in range(n):
                fn()
            times.append((time.perf_counter() - started) / n * 1e6)
    return [(min(times), statistics.median(times)) for times in timings]


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"message": "hello"}


def app_call(middleware: list):
    app = falcon.App(middleware=middleware)
    app.add_route("/hello", Hello())
    env = falcon.testing.create_environ(path="/hello")

    def start_response(status: str, headers: list, exc_info: Any = None) -> Any:
        return None

    def one() -> None:
        for _ in app(dict(env), start_response):
            pass

    return one


def job_work(metrics: PrometheusMetrics):
    jobs_log = FastLogger("forkline.jobs")

    def one() -> None:
        jobs_log.info("job accepted", event="job_accepted", jobId="0123456789abcdef0123456789abcdef", type="message")
        metrics.job_enqueued("message")
        jobs_log.debug("job started", event="job_started", jobId="0123456789abcdef0123456789abcdef",
                       type="message", attempt=1)
        span = attempt_span(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n",
                            "default.0123456789abcdef0123456789abcdef", "message", "default", 1)
        TRACE.set(span)  # as the consumer does: its lines carry the attempt's ids
        metrics.job_started("message", 0.004)  # with its time in queue
        jobs_log.info("job completed", event="job_completed", jobId="0123456789abcdef0123456789abcdef",
                      type="message", durationMs=0.031)
        metrics.job_finished("message", "completed", 0.000031)
        if span.recording:
            span.end(**{"forkline.job.outcome": "completed"})
        TRACE.set(None)

    return one


class Nowhere:
    """An exporter that drops what it is given: the cost measured is the spans', not a network's."""

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


def main() -> int:
    if "--tracing" in sys.argv:
        use_tracing(OpenTelemetryTracing(Nowhere()))
    log_dir = tempfile.mkdtemp(prefix="forkline-bench-logs-")
    saved_stdout = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the lines go where a container's stdout goes: somewhere that is not a terminal
    try:
        setup_logging("bench", "info", log_dir)
        metrics = PrometheusMetrics()
        (with_best, with_median), (without_best, without_median) = per_call_us(
            [app_call([RequestContext(metrics, tracer=tracing)]), app_call([])])
        request_us, request_median = with_best - without_best, with_median - without_median
        [(job_us, job_median)] = per_call_us([job_work(metrics)])
    finally:
        os.dup2(saved_stdout, 1)
    report = {"tracing": tracing().enabled, "request_us": round(request_us, 2),
              "request_median_us": round(request_median, 2),
              "request_budget_us": BUDGET_REQUEST_US, "job_us": round(job_us, 2),
              "job_median_us": round(job_median, 2), "job_budget_us": BUDGET_JOB_US}
    print(f"per request (request id + metrics): {request_us:.2f} us, median round {request_median:.2f} "
          f"(budget {BUDGET_REQUEST_US:.0f})")
    print(f"per job (lifecycle lines + metrics): {job_us:.2f} us, median round {job_median:.2f} "
          f"(budget {BUDGET_JOB_US:.0f})")
    print(json.dumps(report))
    within = request_us <= BUDGET_REQUEST_US and job_us <= BUDGET_JOB_US
    return 0 if within or tracing().enabled else 1  # the budgets are those of the default: tracing off


if __name__ == "__main__":
    sys.exit(main())
