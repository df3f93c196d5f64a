"""deploy/grafana/forkline.json is what deploy/grafana/dashboard.py makes (`make grafana`): never edited by hand,
never stale. Its queries are evaluated against a real Prometheus in tests/e2e/test_prometheus.py."""

import json
import subprocess
import sys

from harness.processes import ROOT

BUILDER = ROOT / "deploy" / "grafana" / "dashboard.py"


def test_the_checked_in_dashboard_is_what_the_code_makes():
    made = subprocess.run([sys.executable, str(BUILDER), "--check"], cwd=ROOT, timeout=60)
    assert made.returncode == 0, "deploy/grafana/forkline.json is stale: run `make grafana`"


def test_every_panel_has_queries_and_the_queue_variable_reaches_the_queue_panels():
    board = json.loads((ROOT / "deploy" / "grafana" / "forkline.json").read_text())
    panels = [p for p in board["panels"] if p["type"] != "row"]
    titles = {p["title"] for p in panels}
    assert {"Throughput", "Time in queue", "Oldest waiting job", "Dead-letter queue", "Consumers", "Request latency",
            "Errors"} <= titles
    assert all(p["targets"] and all(t["expr"] for t in p["targets"]) for p in panels)
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "queue"]
    per_queue = [p for p in panels if "queue" in json.dumps(p["targets"])]
    assert all('$queue' in t["expr"] for p in per_queue for t in p["targets"] if "by (queue" in t["expr"])
