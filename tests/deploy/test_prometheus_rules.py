"""The alert rules (deploy/prometheus/) pass `promtool check rules` and their unit tests (`promtool test
rules`: every rule firing, and not firing where it must not), and each has its runbook entry in the docs."""

import os
import re
import subprocess

import yaml

from harness.processes import ROOT

RULES = ROOT / "deploy" / "prometheus" / "forkline-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "forkline-rules.test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert os.path.exists("/usr/bin/promtool"), "promtool is missing: `make test` installs it (prometheus)"
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, cwd=RULES.parent)


def alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_the_rules_are_valid_and_their_unit_tests_pass():
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0 and f"SUCCESS: {len(alerts())} rules found" in checked.stdout, checked.stdout
    tested = promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_every_rule_is_unit_tested_firing_and_not_firing():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for rule in alerts():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{rule['alert']} is never tested firing"
        assert any(not case["exp_alerts"] for case in mine), f"{rule['alert']} is never tested not firing"


def test_every_rule_has_a_summary_and_a_runbook_entry_in_the_docs():
    operating = (ROOT / "docs" / "operating.md").read_text()
    anchors = {heading.lower() for heading in re.findall(r"^#### (\w+)$", operating, re.MULTILINE)}
    for rule in alerts():
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["runbook"] == f"docs/operating.md#{rule['alert'].lower()}"
        assert rule["alert"].lower() in anchors, f"no runbook entry '#### {rule['alert']}' in docs/operating.md"
