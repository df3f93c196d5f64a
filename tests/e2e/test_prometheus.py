"""A real Prometheus (Debian's `prometheus`) scraping a running stack (`forkline serve` + `forkline worker`)
with forkline's alert rules loaded, from a copy whose `for:` are cut to 2 s: every consumer stopped while
jobs wait -> ForklineQueueWithoutConsumer fires (read from Prometheus's alerts API); a consumer started ->
it resolves. Every rule's expression and every Grafana panel's query evaluates against it, and every
metric name they use is among the series it scraped or declared by forkline: PromQL does not fail on an
unknown name, so the names are checked here."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from harness.processes import ROOT, Forkline, stop_pid, wait_until
from local.runtime.redis_server import free_port
from tests.figures import report

RULES = ROOT / "deploy" / "prometheus" / "forkline-rules.yml"
BOARD = ROOT / "deploy" / "grafana" / "forkline.json"
ENV = {"WEB_CONCURRENCY": "2", "WORKER_HEARTBEAT": "0.5", "JOB_MAX_RETRIES": "0", "GRACEFUL_TIMEOUT": "10"}
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$queue": ".*"}


@pytest.fixture
def prometheus(tmp_path):
    """Start Prometheus for targets given later: yields start(target ports) -> its API port."""
    assert os.path.exists("/usr/bin/prometheus"), "prometheus is missing: `make test` installs it"
    started: list[subprocess.Popen] = []

    def start(*targets: int) -> int:
        rules = yaml.safe_load(RULES.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                rule["for"] = "2s"  # the test copy: the rules as shipped, sooner
        (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "rule_files": [str(tmp_path / "rules.yml")],
                  "scrape_configs": [{"job_name": "forkline",
                                      "static_configs": [{"targets": [f"127.0.0.1:{t}" for t in targets]}]}]}
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        log = open(tmp_path / "prometheus.out", "wb")
        started.append(subprocess.Popen(
            ["/usr/bin/prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT))
        wait_until(lambda: ask(port, "/-/ready") is not None, 30, 0.2, "prometheus ready")
        return port

    yield start
    for proc in started:
        assert stop_pid(proc, signal.SIGTERM, 20) == 0


def ask(port: int, path: str, **params: str) -> dict | None:
    url = f"http://127.0.0.1:{port}{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            body = answer.read().decode()
    except OSError:
        return None
    return json.loads(body) if body.startswith("{") else {"text": body}


def value(port: int, promql: str) -> float | None:
    answer = ask(port, "/api/v1/query", query=promql)
    assert answer is not None and answer["status"] == "success", (promql, answer)
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def firing(port: int, name: str) -> list[dict]:
    answer = ask(port, "/api/v1/alerts")
    assert answer is not None
    return [a for a in answer["data"]["alerts"] if a["labels"]["alertname"] == name and a["state"] == "firing"]


def declared_names() -> set[str]:
    """Every series name forkline's own families expose (counters' _total, histograms' _bucket/_sum/_count)."""
    code = ("from adapters.metrics import families; from prometheus_client import REGISTRY; families(); "
            "print('\\n'.join(f'{m.name} {m.type}' for m in REGISTRY.collect() if m.name.startswith('forkline')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}).stdout
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    return {name + suffix for name, kind in (line.split() for line in out.splitlines())
            for suffix in suffixes.get(kind, ("",))}


def expressions() -> dict[str, str]:
    """Each rule's expression and each Grafana panel's query (its variables given values), by where it is."""
    found = {rule["alert"]: rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"]
             for rule in group["rules"]}
    for panel in json.loads(BOARD.read_text())["panels"]:
        for n, target in enumerate(panel.get("targets", [])):
            expr = target["expr"]
            for variable, given in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, given)
            found[f"panel {panel['title']} #{n}"] = expr
    return found


def test_the_no_consumer_alert_fires_and_resolves_and_every_query_is_sound(tmp_path, redis_url, prometheus):
    env, metrics_port = {**ENV, "REDIS_URL": redis_url}, free_port()
    api = Forkline("serve", tmp_path, env).start()
    worker = Forkline("worker", tmp_path, {**env, "METRICS_PORT": str(metrics_port)}).start(wait_http=False)
    try:
        port = prometheus(api.port, metrics_port)  # the web side's metrics, and the worker's own (its jobs)
        for body in ({"message": "ok"}, {"message": "dies", "shouldFail": True}):
            assert api.request("POST", "/jobs", body)[0] == 202
        wait_until(lambda: value(port, 'forkline_queue_consumers{queue="default"}') == 1
                   and value(port, 'forkline_queue_jobs{queue="default",state="dlq"}') == 1
                   and value(port, 'sum(forkline_job_wait_seconds_count{queue="default"})') == 2, 30, 0.5,
                   "the stack scraped: a consumer, a dead job, two waits measured")

        assert worker.stop(signal.SIGTERM, timeout=30) == 0  # every consumer gone
        stopped = time.monotonic()
        assert api.request("POST", "/jobs", {"message": "waits"})[0] == 202
        [alert] = wait_until(lambda: firing(port, "ForklineQueueWithoutConsumer"), 30, 0.5, "the alert firing")
        fired = time.monotonic() - stopped
        assert alert["labels"]["queue"] == "default" and alert["labels"]["severity"] == "critical"
        assert alert["annotations"]["summary"] == "Queue default: 1 job(s) waiting and no consumer serving it"
        assert value(port, 'forkline_queue_oldest_waiting_seconds{queue="default"}') > 0

        worker = Forkline("worker", tmp_path, {**env, "METRICS_PORT": str(metrics_port)}).start(wait_http=False)
        restarted = time.monotonic()
        wait_until(lambda: not firing(port, "ForklineQueueWithoutConsumer"), 30, 0.5, "the alert resolved")
        report(f"prometheus: ForklineQueueWithoutConsumer (for: 2s, 1 s scrapes) fired {fired:.1f} s after the last "
               f"consumer stopped, resolved {time.monotonic() - restarted:.1f} s after one started")

        scraped = set(ask(port, "/api/v1/label/__name__/values")["data"])
        known = scraped | declared_names()
        for where, expr in expressions().items():
            answer = ask(port, "/api/v1/query", query=expr)
            assert answer is not None and answer["status"] == "success", (where, expr, answer)
            unknown = set(re.findall(r"\bforkline_[a-z_]+", expr)) - known
            assert not unknown, f"{where} names series forkline does not have: {unknown}"
    finally:
        codes = [worker.stop(signal.SIGTERM, timeout=30), api.stop(signal.SIGTERM, timeout=30)]
    assert codes == [0, 0], worker.output()[-2000:] + api.output()[-2000:]
