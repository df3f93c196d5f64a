import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys

import pytest
from pydantic import ValidationError

from adapters.logs import prune_logs, setup_logging
from adapters.settings import Settings, SettingsError, load_settings
from harness.processes import ROOT


def test_defaults_and_environment(monkeypatch):
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    settings = load_settings()
    assert (settings.port, settings.log_level, settings.web_workers) == (8123, "debug", 3)
    assert settings.max_attempts == settings.job_max_retries + 1
    monkeypatch.delenv("WEB_CONCURRENCY")
    assert load_settings().web_workers == (os.cpu_count() or 1) + 1


@pytest.mark.parametrize("name, value", [("PORT", "70000"), ("WORKER_CONCURRENCY", "zero"), ("LOG_LEVEL", "loud"),
                                         ("REDIS_URL", "http://127.0.0.1:6379")])
def test_an_invalid_value_names_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith(f"invalid setting {name}=")


def refusal(monkeypatch, env: dict[str, str]) -> str:
    """What load_settings() says when it refuses these variables (it must refuse them)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    return str(err.value)


@pytest.mark.parametrize("env, says", [
    ({"QUEUE_BACKEND": "sqs", "JOBS_SQS_QUEUE_URL": "https://q"}, "QUEUE_BACKEND=sqs goes with JOB_STORE=dynamodb"),
    ({"JOB_STORE": "dynamodb", "JOBS_TABLE": "t"}, "QUEUE_BACKEND=sqs goes with JOB_STORE=dynamodb"),
    ({"QUEUE_BACKEND": "sqs", "JOBS_SQS_QUEUE_URL": "https://q", "JOB_STORE": "dynamodb"},
     "JOB_STORE=dynamodb needs JOBS_TABLE"),
    ({"QUEUE_BACKEND": "sqs", "JOBS_SQS_QUEUE_URL": "https://q", "JOB_STORE": "dynamodb", "JOBS_TABLE": "t"},
     "QUEUE_BACKEND=sqs needs an SQS queue for each named queue: add slow=<url> to JOBS_SQS_QUEUE_URLS"),
])
def test_only_the_two_pairings_of_queue_and_store_are_accepted(monkeypatch, env, says):
    assert says in refusal(monkeypatch, env)
    monkeypatch.setenv("QUEUE_BACKEND", "sqs")
    monkeypatch.setenv("JOBS_SQS_QUEUE_URL", "https://q")
    monkeypatch.setenv("JOB_STORE", "dynamodb")
    monkeypatch.setenv("JOBS_TABLE", "t")
    monkeypatch.setenv("JOBS_SQS_QUEUE_URLS", "slow=https://s")
    loaded = load_settings()
    assert loaded.jobs_table == "t" and loaded.sqs_queue_urls == {"default": "https://q", "slow": "https://s"}


@pytest.mark.parametrize("env, says", [
    ({"REDIS_SENTINELS": "10.0.0.1:26379,nohost"}, "invalid setting REDIS_SENTINELS='10.0.0.1:26379,nohost'"),
    ({"REDIS_SENTINELS": "10.0.0.1:26379"}, "REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together"),
    ({"REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together"),
    ({"REDIS_CLUSTER": "true"}, "REDIS_CLUSTER=true needs REDIS_URL (a seed node), not REDIS_SENTINELS"),
    ({"REDIS_CLUSTER": "true", "REDIS_URL": "redis://h:7000", "REDIS_REPLICA_ACKS": "1"},
     "REDIS_REPLICA_ACKS is not supported with REDIS_CLUSTER=true"),
])
def test_where_redis_is_must_be_one_complete_answer(monkeypatch, env, says):
    assert says in refusal(monkeypatch, env)


def test_sentinels_and_cluster_reach_the_redis_target(monkeypatch):
    from adapters.redis.client import cluster_seeds
    from adapters.wiring import redis_target

    monkeypatch.setenv("REDIS_SENTINELS", "10.0.0.1:26379, sentinel-2:26380")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "mymaster")
    target = redis_target(load_settings())
    assert (target.sentinels, target.master, target.cluster) == (
        (("10.0.0.1", 26379), ("sentinel-2", 26380)), "mymaster", False)
    for name in ("REDIS_SENTINELS", "REDIS_SENTINEL_MASTER"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("REDIS_URL", "redis://10.0.0.2:7000/0")
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    target = redis_target(load_settings())
    assert (target.url, target.cluster, target.describe()) == ("redis://10.0.0.2:7000/0", True,
                                                               "cluster seeded by 10.0.0.2:7000")
    assert cluster_seeds("rediss://u:p@10.0.0.2:7000, node-b:7001,node-c/0") == (
        "rediss://u:p@10.0.0.2:7000/0", [("10.0.0.2", 7000), ("node-b", 7001), ("node-c", 6379)])


def test_the_command_exits_2_with_one_line_and_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "local.commands.cli", "run"], cwd=tmp_path, capture_output=True,
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


def test_stdout_is_json_when_piped_and_human_on_a_terminal_and_the_file_always_json(tmp_path):
    import pty

    code = ("import logging; from adapters.logs import setup_logging, FastLogger; "
            f"setup_logging('web', 'info', {str(tmp_path)!r}); "
            "logging.getLogger('forkline.x').info('plain %s', 'line', extra={'jobId': 'j1'}); "
            "FastLogger('forkline.jobs').info('job accepted', event='job_accepted', jobId='j2', type='message')")
    piped = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    first, second = (json.loads(line) for line in piped.stdout.splitlines())
    assert first["message"] == "plain line" and first["jobId"] == "j1" and first["role"] == "web"
    assert second["message"] == "job accepted" and second["jobId"] == "j2" and second["level"] == "info"
    assert set(second) == {"time", "level", "role", "pid", "logger", "message", "event", "jobId", "type"}

    leader, follower = pty.openpty()
    on_tty = subprocess.run([sys.executable, "-c", code], cwd=ROOT, stdout=follower, stderr=subprocess.PIPE,
                            timeout=30)
    os.close(follower)
    assert on_tty.returncode == 0
    text = os.read(leader, 65536).decode()
    os.close(leader)
    human = [line for line in text.splitlines() if line.strip()]
    assert len(human) == 2 and not human[0].startswith("{")
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{3} INFO +web/\d+ plain line +jobId=j1$", human[0]), human
    assert "job accepted" in human[1] and "jobId=j2" in human[1] and "event=" not in human[1]
    in_file = [json.loads(line) for line in next(tmp_path.glob("forkline-*.log")).read_text().splitlines()]
    assert [e["message"] for e in in_file] == ["plain line", "job accepted"] * 2  # both runs, JSON


def test_a_line_logged_while_a_request_is_served_carries_its_request_id(tmp_path):
    import falcon.testing

    from adapters.http.app import create_app
    from tests.fakes import MemoryQueue, fake_deps

    queue = MemoryQueue()
    queue.fail_next = True  # the submit raises: a logged 500
    client = falcon.testing.TestClient(create_app(fake_deps(jobs=queue)))
    setup_logging("web", "info", str(tmp_path))
    try:
        result = client.simulate_post("/jobs", json={"message": "m"}, headers={"X-Request-ID": "req-500"})
        after = client.simulate_get("/")
    finally:
        setup_logging("test", "warning", None)
    assert result.status_code == 500 and result.headers["X-Request-ID"] == "req-500"
    assert "Traceback" not in result.text
    logged = [json.loads(line) for line in next(tmp_path.glob("forkline-*.log")).read_text().splitlines()]
    errors = [entry for entry in logged if entry["level"] == "error"]
    assert errors and all(entry["requestId"] == "req-500" for entry in errors)
    assert after.headers["X-Request-ID"] != "req-500"


def test_process_counts_default_to_the_cores_and_the_consumers_run_niced():
    cores = os.cpu_count() or 1
    default = Settings(_env_file=None)
    assert (default.web_workers, default.consumers, default.consumer_nice) == (cores + 1, cores, 10)
    chosen = Settings(web_concurrency=4, consumer_processes=3, consumer_nice=0, _env_file=None)
    assert (chosen.web_workers, chosen.consumers, chosen.consumer_nice) == (4, 3, 0)
    with pytest.raises(ValidationError):
        Settings(consumer_nice=20, _env_file=None)


def test_a_line_after_utc_midnight_goes_to_the_next_days_file(tmp_path, monkeypatch):
    import adapters.logs as logs

    sink = logs.LogSink("test", str(tmp_path), human=False)
    before_midnight = dt.datetime(2026, 3, 1, 23, 59, 59, 500000, tzinfo=dt.UTC).timestamp()
    for now, message in ((before_midnight, "late"), (before_midnight + 0.4, "later"),
                         (before_midnight + 0.6, "new day")):
        monkeypatch.setattr(logs.time, "time", lambda now=now: now)
        sink.write_fields(logging.INFO, "forkline.test", message, {})
    sink.close()
    days = {f.name: [json.loads(line)["message"] for line in f.read_text().splitlines()]
            for f in tmp_path.glob("forkline-*.log")}
    assert days == {"forkline-2026-03-01.log": ["late", "later"], "forkline-2026-03-02.log": ["new day"]}


FULL_DISK_SCRIPT = """
import logging, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails (EFBIG) instead of killing
from adapters import logs
sink = logs.LogSink("test", sys.argv[1], human=False)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (2048, hard))  # the log file cannot grow past 2 KiB
log = logging.getLogger("forkline.test.full")
log.addHandler(sink)
log.propagate = False
for n in range(100):
    log.warning("line %d", n)  # through logging's handler
    sink.write_fields(logging.INFO, "forkline.test", f"fast {n}", {})  # and FastLogger's path
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
sink.write_fields(logging.INFO, "forkline.test", "back", {})
"""


def test_a_log_file_that_cannot_grow_drops_lines_with_one_note_and_logging_resumes(tmp_path):
    """stdout still gets every line; stderr one note with the count (at most one a minute), no traceback;
    once the file may grow again the same file takes lines, and a note says how many were dropped."""
    result = subprocess.run([sys.executable, "-c", FULL_DISK_SCRIPT, str(tmp_path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 201  # stdout unaffected
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr
    dropped, resumed = result.stderr.splitlines()
    assert "1 log line(s) dropped" in dropped, dropped
    assert re.search(r"log file writable again; \d+ line\(s\) dropped since the last note", resumed), resumed
    [written] = tmp_path.glob("forkline-*.log")
    whole = []
    for line in written.read_text().splitlines():
        try:
            whole.append(json.loads(line)["message"])
        except ValueError:
            torn = line  # the part of a line that fitted
    assert whole[0] == "line 0" and whole[-1] == "back" and len(whole) < 40 and torn
    assert int(resumed.split("; ")[1].split()[0]) == 200 - (len(whole) - 1) - 1  # every refused line counted
