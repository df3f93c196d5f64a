"""The Grafana dashboard of forkline, made from code with Grafana's own SDK (grafana-foundation-sdk):
`make grafana` writes deploy/grafana/forkline.json from it; tests/deploy/test_grafana.py fails when
the checked-in file is stale, and tests/e2e/test_prometheus.py evaluates every panel's query against a
real Prometheus scraping a running stack.

Queue gauges are the same on every target of one stack, so panels take their max by queue; counters
and histograms are summed. `$queue` picks queues (all by default); `$datasource` the Prometheus.
"""

import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard as DashboardBuilder
from grafana_foundation_sdk.builders.dashboard import DatasourceVariable, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.timeseries import Panel
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

OUT = Path(__file__).with_name("forkline.json")
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
Q = 'queue=~"$queue"'
RATE = "$__rate_interval"


def panel(ids: Iterator[int], title: str, unit: str, queries: list[tuple[str, str]], description: str = "") -> Panel:
    built = (Panel().id(next(ids)).title(title).description(description).unit(unit).min(0).datasource(DATASOURCE)
             .height(8).span(12))
    for expr, legend in queries:
        built = built.with_target(Dataquery().expr(expr).legend_format(legend).datasource(DATASOURCE))
    return built


def quantiles(metric: str, by: str, where: str = "") -> list[tuple[str, str]]:
    selector = f"{{{where}}}" if where else ""
    return [(f"histogram_quantile({q}, sum by ({by}le) (rate({metric}_bucket{selector}[{RATE}])))",
             f"p{int(q * 100)}" + (" {{queue}}" if by else "")) for q in (0.5, 0.95, 0.99)]


def dashboard() -> DashboardBuilder:
    ids = itertools.count(1)  # panel ids, in the order the panels are made
    return (
        DashboardBuilder("forkline").uid("forkline").tags(["forkline"]).refresh("30s").time("now-3h", "now")
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_variable(QueryVariable("queue").label("queue").datasource(DATASOURCE)
                       .query("label_values(forkline_queue_jobs, queue)").refresh(VariableRefresh.ON_DASHBOARD_LOAD)
                       .multi(True).include_all(True).all_value(".*"))
        .with_row(Row("Jobs").id(next(ids)))
        .with_panel(panel(ids, "Throughput", "ops", [
            (f"sum by (queue) (rate(forkline_jobs_enqueued_total{{{Q}}}[{RATE}]))", "accepted {{queue}}"),
            (f"sum by (queue) (rate(forkline_jobs_completed_total{{{Q}}}[{RATE}]))", "completed {{queue}}"),
            (f"sum by (queue) (rate(forkline_jobs_retried_total{{{Q}}}[{RATE}]))", "retried {{queue}}"),
            (f"sum by (queue) (rate(forkline_jobs_dead_total{{{Q}}}[{RATE}]))", "dead {{queue}}"),
        ], description="jobs per second"))
        .with_panel(panel(ids, "Time in queue", "s", quantiles("forkline_job_wait_seconds", "queue, ", Q),
                          description="from when a job became claimable to the start of its attempt"))
        .with_panel(panel(ids, "Oldest waiting job", "s", [
            (f"max by (queue) (forkline_queue_oldest_waiting_seconds{{{Q}}})", "{{queue}}")]))
        .with_panel(panel(ids, "Jobs by state", "short", [
            (f'max by (queue, state) (forkline_queue_jobs{{{Q}, state=~"waiting|active|delayed"}})',
             "{{state}} {{queue}}")]))
        .with_panel(panel(ids, "Dead-letter queue", "short", [
            ('max by (queue) (forkline_queue_jobs{queue=~"$queue|", state="dlq"})', "{{queue}}")],
            description="one series without a queue where one DLQ takes every queue's jobs (SQS)"))
        .with_panel(panel(ids, "Consumers", "short", [
            (f"max by (queue) (forkline_queue_consumers{{{Q}}})", "{{queue}}")],
            description="live consumer processes per queue, from their heartbeats (not Lambda)"))
        .with_panel(panel(ids, "Attempt duration", "s", quantiles("forkline_job_duration_seconds", "queue, ", Q)))
        .with_row(Row("HTTP").id(next(ids)))
        .with_panel(panel(ids, "Request latency", "s", quantiles("forkline_http_request_duration_seconds", ""),
                          description="every route but /health and /metrics"))
        .with_panel(panel(ids, "Errors", "percentunit", [
            (f'sum(rate(forkline_http_requests_total{{status=~"5..", route!~"/health|/livez|/readyz"}}[{RATE}]))'
             f' / sum(rate(forkline_http_requests_total{{route!~"/health|/livez|/readyz"}}[{RATE}]))', "5xx"),
            (f'sum(rate(forkline_http_requests_total{{status=~"4..", route!~"/health|/livez|/readyz"}}[{RATE}]))'
             f' / sum(rate(forkline_http_requests_total{{route!~"/health|/livez|/readyz"}}[{RATE}]))', "4xx"),
        ], description="share of requests, probes left out"))
        .with_panel(panel(ids, "Processes replaced", "short", [
            (f"sum by (role, cause) (increase(forkline_worker_restarts_total[{RATE}]))", "{{role}} {{cause}}")]))
    )


def render() -> str:
    return json.dumps(dashboard().build(), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.write_text(render())
    print(f"wrote {OUT}")
