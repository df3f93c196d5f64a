"""The metrics adapter: tallies reach the shared multiprocess files, and the private
prometheus_client attributes it relies on still exist."""

import os
import subprocess
import sys

from harness.processes import ROOT

SCRIPT = """
import os, sys
os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
from adapters import metrics
if sys.argv[2] == "no-flush":
    metrics.Tally.FLUSH_SECONDS = 3600.0  # the flusher thread never comes round, however slow this machine
m = metrics.PrometheusMetrics()
for status, seconds in ((202, 0.0007), (202, 0.03), (422, 0.002)):
    m.observe_request("/jobs", "POST", status, seconds)
m.observe_request("/health", "GET", 200, 0.001)
m.job_started("message", 0.03)
m.job_started("message")  # a wait not known (a message without a record): counted, not observed
m.job_finished("message", "completed", 0.2)
m.job_finished("message", "dead", None)
if sys.argv[2] == "flush":
    metrics.flush_all()
"""


def run(directory, mode):
    subprocess.run([sys.executable, "-c", SCRIPT, str(directory), mode], cwd=ROOT, check=True, timeout=30)


def scrape(directory):
    code = ("import os, sys; os.environ['PROMETHEUS_MULTIPROC_DIR'] = sys.argv[1]; "
            "from adapters import metrics; sys.stdout.write(metrics.exposition()[1].decode())")
    return subprocess.run([sys.executable, "-c", code, str(directory)], cwd=ROOT, check=True, timeout=30,
                          capture_output=True, text=True).stdout


def test_tallies_from_other_processes_add_up_once_flushed(tmp_path):
    run(tmp_path, "flush")
    run(tmp_path, "flush")
    text = scrape(tmp_path)
    assert 'forkline_http_requests_total{method="POST",route="/jobs",status="202"} 4.0' in text
    assert 'forkline_http_requests_total{method="POST",route="/jobs",status="422"} 2.0' in text
    assert 'forkline_http_request_duration_seconds_bucket{le="0.001",method="POST",route="/jobs"} 2.0' in text
    assert 'forkline_http_request_duration_seconds_bucket{le="0.05",method="POST",route="/jobs"} 6.0' in text
    assert 'forkline_http_request_duration_seconds_count{method="POST",route="/jobs"} 6.0' in text
    assert 'forkline_http_request_duration_seconds_count{method="GET",route="/health"}' not in text
    assert 'forkline_jobs_completed_total{queue="default",type="message"} 2.0' in text
    assert 'forkline_jobs_dead_total{queue="default",type="message"} 2.0' in text
    assert 'forkline_job_duration_seconds_count{queue="default",type="message"} 2.0' in text  # the dead one did not run
    assert 'forkline_jobs_started_total{queue="default",type="message"} 4.0' in text
    assert 'forkline_job_wait_seconds_bucket{le="0.025",queue="default"} 0.0' in text
    assert 'forkline_job_wait_seconds_bucket{le="0.05",queue="default"} 2.0' in text
    assert 'forkline_job_wait_seconds_count{queue="default"} 2.0' in text


def test_an_unflushed_tally_is_not_in_the_files(tmp_path):
    run(tmp_path, "no-flush")  # counts, then exits before its flusher runs: counting alone writes nothing
    assert 'forkline_jobs_completed_total{queue="default",type="message"}' not in scrape(tmp_path)


def test_the_private_prometheus_client_attributes_forkline_uses_exist():
    from prometheus_client import CollectorRegistry, Histogram

    histogram = Histogram("h", "h", ["x"], buckets=(0.1, 1.0), registry=CollectorRegistry())
    child = histogram.labels("a")
    assert tuple(histogram._upper_bounds) == (0.1, 1.0, float("inf"))
    assert len(child._buckets) == 3 and hasattr(child._sum, "inc")
    child._buckets[1].inc(2)
    child._sum.inc(1.5)
    samples = {(s.name, s.labels.get("le")): s.value for metric in histogram.collect() for s in metric.samples}
    assert samples[("h_bucket", "1.0")] == 2 and samples[("h_sum", None)] == 1.5
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") is None  # this test process counts in memory
