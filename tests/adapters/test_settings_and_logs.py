import datetime as dt
import json
import logging
import os
import subprocess
import sys

import pytest

from adapters.logs import prune_logs, setup_logging
from adapters.settings import SettingsError, load_settings
from local.processes import ROOT


def test_defaults_and_environment(monkeypatch):
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    settings = load_settings()
    assert (settings.port, settings.log_level, settings.web_workers) == (8123, "debug", 3)
    assert settings.max_attempts == settings.job_max_retries + 1
    monkeypatch.delenv("WEB_CONCURRENCY")
    assert load_settings().web_workers == (os.cpu_count() or 1) + 1


@pytest.mark.parametrize("name, value", [("PORT", "70000"), ("WORKER_CONCURRENCY", "zero"), ("LOG_LEVEL", "loud")])
def test_an_invalid_value_names_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith(f"invalid setting {name}=")


def test_the_command_exits_2_with_one_line_and_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "local.cli", "run"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=30, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                                         "JOB_MAX_RETRIES": "-1"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "JOB_MAX_RETRIES" in result.stderr
    assert "Traceback" not in result.stderr


def test_logs_are_json_lines_in_a_dated_file(tmp_path):
    setup_logging("test", "info", str(tmp_path))
    try:
        logging.getLogger("forkline.test").info("hello %s", "there", extra={"jobId": "j1"})
    finally:
        setup_logging("test", "warning", None)
    files = list(tmp_path.glob("forkline-*.log"))
    assert [f.name for f in files] == [f"forkline-{dt.datetime.now(dt.UTC).date()}.log"]
    line = json.loads(files[0].read_text().splitlines()[-1])
    assert line["message"] == "hello there" and line["jobId"] == "j1" and line["role"] == "test"
    assert line["level"] == "info" and isinstance(line["pid"], int)


def test_prune_keeps_recent_days(tmp_path):
    for day in ("2026-01-01", "2026-01-10", "2026-01-14"):
        (tmp_path / f"forkline-{day}.log").write_text("x\n")
    (tmp_path / "other.log").write_text("x\n")
    removed = prune_logs(str(tmp_path), keep_days=5, today=dt.date(2026, 1, 14))
    assert sorted(p.name for p in removed) == ["forkline-2026-01-01.log"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "forkline-2026-01-10.log", "forkline-2026-01-14.log", "other.log"]
