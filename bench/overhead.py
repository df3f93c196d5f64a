"""What the observability adds per request and per job, timed in-process (a benchmark, not a test).

    .venv/bin/python bench/overhead.py            # also run by `make bench`

Per request: the request-id middleware's work (read or make the id, set the log context,
send the header) and the request's metrics (a counter and a latency histogram), on a real
Falcon request. Per job: its lifecycle lines (accepted and completed at info, started at
debug, filtered out at the default LOG_LEVEL=info) and its metrics (enqueued, started,
completed, duration), written as in production: JSON to a day file and to stdout
(here /dev/null), metrics in prometheus_client's multiprocess files.
Budgets: 8 us per request, 25 us per job. Prints a table and one JSON line.
"""

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="forkline-bench-metrics-")  # before the import

import falcon  # noqa: E402
import falcon.testing  # noqa: E402

from adapters.http.middleware import RequestContext  # noqa: E402
from adapters.logs import FastLogger, setup_logging  # noqa: E402
from adapters.metrics import PrometheusMetrics  # noqa: E402

BUDGET_REQUEST_US, BUDGET_JOB_US = 8.0, 25.0
N = 20000


def per_call_us(fn, n: int = N, rounds: int = 9) -> tuple[float, float]:
    """(best, median) over `rounds` of the mean cost of one call, in microseconds. The best is
    the cost itself (timeit's advice: slower rounds measure the machine's other load); the
    median shows that load."""
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        timings.append((time.perf_counter() - started) / n * 1e6)
    return min(timings), statistics.median(timings)


def request_work(metrics: PrometheusMetrics):
    middleware = RequestContext(metrics)
    env = falcon.testing.create_environ(path="/jobs", method="POST", headers={"X-Request-ID": "bench-request"})
    req, resp = falcon.Request(env), falcon.Response()
    req.uri_template = "/jobs"
    resp.status = 202

    def one() -> None:
        middleware.process_request(req, resp)
        middleware.process_response(req, resp, None, True)

    return one


def job_work(metrics: PrometheusMetrics):
    jobs_log = FastLogger("forkline.jobs")

    def one() -> None:
        jobs_log.info("job accepted", event="job_accepted", jobId="0123456789abcdef0123456789abcdef", type="message")
        metrics.job_enqueued("message")
        jobs_log.debug("job started", event="job_started", jobId="0123456789abcdef0123456789abcdef",
                       type="message", attempt=1)
        metrics.job_started("message")
        jobs_log.info("job completed", event="job_completed", jobId="0123456789abcdef0123456789abcdef",
                      type="message", durationMs=0.031)
        metrics.job_finished("message", "completed", 0.000031)

    return one


def main() -> int:
    log_dir = tempfile.mkdtemp(prefix="forkline-bench-logs-")
    saved_stdout = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the lines go where a container's stdout goes: somewhere that is not a terminal
    try:
        setup_logging("bench", "info", log_dir)
        metrics = PrometheusMetrics()
        request_us, request_median = per_call_us(request_work(metrics))
        job_us, job_median = per_call_us(job_work(metrics))
    finally:
        os.dup2(saved_stdout, 1)
    report = {"request_us": round(request_us, 2), "request_median_us": round(request_median, 2),
              "request_budget_us": BUDGET_REQUEST_US, "job_us": round(job_us, 2),
              "job_median_us": round(job_median, 2), "job_budget_us": BUDGET_JOB_US}
    print(f"per request (request id + metrics): {request_us:.2f} us, median round {request_median:.2f} "
          f"(budget {BUDGET_REQUEST_US:.0f})")
    print(f"per job (lifecycle lines + metrics): {job_us:.2f} us, median round {job_median:.2f} "
          f"(budget {BUDGET_JOB_US:.0f})")
    print(json.dumps(report))
    return 0 if request_us <= BUDGET_REQUEST_US and job_us <= BUDGET_JOB_US else 1


if __name__ == "__main__":
    sys.exit(main())
