"""The operator commands against a running `forkline serve`, on the Redis DLQ and on the SQS DLQ
(moto's server), as an on-call engineer runs them."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from moto.server import ThreadedMotoServer

from adapters.aws.dlq import SQSDLQ
from adapters.redis.client import RedisHandle
from adapters.redis.dlq import RedisDLQ
from functions.models import DeadJob
from harness.processes import ROOT, Forkline, wait_until
from local.runtime.redis_server import free_port

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
KEY = "ops-key-1"


@pytest.fixture(params=["redis", "sqs"])
def stack(request, tmp_path, redis_url, monkeypatch):
    env = {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "2", "API_KEYS": KEY}
    server = None
    if request.param == "sqs":
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
        server.start()
        endpoint = f"http://127.0.0.1:{server._port}"
        for name, value in {**AWS, "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(name, value)
        dlq = SQSDLQ("")
        dlq.queue_url = dlq.sqs.client.create_queue(QueueName="ops-dlq")["QueueUrl"]
        env.update({**AWS, "AWS_ENDPOINT_URL": endpoint, "DLQ_BACKEND": "sqs", "DLQ_SQS_QUEUE_URL": dlq.queue_url})
    else:
        dlq = RedisDLQ(RedisHandle(redis_url))
    api = Forkline("serve", tmp_path, env).start()
    yield api, dlq
    assert api.stop(signal.SIGTERM, timeout=30) == 0
    if server is not None:
        server.stop()


def forkline(api, *args, key=KEY, timeout=60):
    env = {**os.environ, "FORKLINE_URL": f"http://127.0.0.1:{api.port}", "FORKLINE_API_KEY": key,
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "local.commands.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def put_dead(dlq, count, type_="message", start=1000.0):
    for i in range(count):
        dlq.put(DeadJob(jobId=f"{type_}-{i:04d}", type=type_, payload={"message": str(i)},
                        error="JobFailed: boom", traceback="Traceback (most recent call last): boom",
                        attempts=4, failedAt=start + i))


def test_list_show_delete_purge_and_the_errors(stack):
    api, dlq = stack
    put_dead(dlq, 3)
    put_dead(dlq, 2, type_="sleep", start=5000.0)
    listed = forkline(api, "dlq", "list", "--type", "sleep", "--json")
    assert listed.returncode == 0 and [e["jobId"] for e in json.loads(listed.stdout)["items"]] == \
        ["sleep-0000", "sleep-0001"]
    table = forkline(api, "dlq", "list").stdout
    assert "message-0000" in table and "5 matching" in table
    shown = forkline(api, "dlq", "show", "message-0001")
    assert shown.returncode == 0 and "Traceback (most recent call last): boom" in shown.stdout
    assert forkline(api, "dlq", "delete", "message-0001").returncode == 0
    gone = forkline(api, "dlq", "show", "message-0001")
    assert gone.returncode == 1 and gone.stderr.strip().startswith("forkline: 404")
    assert forkline(api, "dlq", "purge", "--type", "sleep").returncode == 2  # --yes is required
    purged = forkline(api, "dlq", "purge", "--type", "sleep", "--yes", "--json")
    assert json.loads(purged.stdout) == {"purged": 2, "remaining": 0}
    assert [e["jobId"] for e in json.loads(forkline(api, "dlq", "list", "--json").stdout)["items"]] == \
        ["message-0000", "message-0002"]
    refused = forkline(api, "dlq", "list", key="wrong")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "refused the key (403" in refused.stderr
    assert json.loads(forkline(api, "stats", "--json").stdout)["dlq"] == 2
    assert json.loads(forkline(api, "workers", "--json").stdout)["items"] == []  # no consumer in this stack


def test_replay_dry_run_confirmation_and_a_paced_bulk_replay(stack, request):
    api, dlq = stack
    # On SQS every call reads the whole DLQ, and moto's receive is slow on a long queue: fewer jobs there.
    count, rate = (500, 50) if isinstance(dlq, RedisDLQ) else (60, 20)
    put_dead(dlq, count)
    put_dead(dlq, 3, type_="sleep")
    dry = forkline(api, "dlq", "replay", "--type", "message", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith(f"{count} would be replayed ({count} matching, 0 skipped")
    unconfirmed = forkline(api, "dlq", "replay", "--type", "message")
    assert unconfirmed.returncode == 1 and "not replayed" in unconfirmed.stderr
    started = time.monotonic()
    done = forkline(api, "dlq", "replay", "--type", "message", "--per-second", str(rate), "--yes", "--json",
                    timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["replayed"] == count and report["skipped"] == 0
    # Paced: a call of `rate` jobs each second, so the last one starts (count - rate) / rate s in (500 at 50/s: 9 s).
    expected = (count - rate) / rate
    assert expected * 0.95 <= report["seconds"] < expected * 3 + 5, report
    progress = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert len(progress) >= count // rate and progress[-1].endswith(f"{count}/{count}")
    stats = json.loads(forkline(api, "stats", "--json").stdout)
    assert stats["waiting"] == count and stats["dlq"] == 3  # each replayed once; the sleep jobs stay
    job = json.loads(forkline(api, "jobs", "show", "message-0042", "--json").stdout)
    assert job["state"] == "queued" and job["replays"] == 1
    cancelled = forkline(api, "jobs", "cancel", "message-0042")
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == "message-0042 cancelled", cancelled.stderr
    again = forkline(api, "jobs", "cancel", "message-0042")
    assert again.returncode == 1 and "only a job that has not started can be cancelled" in again.stderr
    print(f"\nbulk replay of {count} at --per-second {rate}: {took:.1f} s")


def test_stats_watch_refreshes_until_interrupted(stack):
    api, _ = stack
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},  # as a user's shell
           "FORKLINE_URL": f"http://127.0.0.1:{api.port}", "FORKLINE_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    # As from a terminal: SIGINT at its default even when the suite runs in a background job (which starts
    # with SIGINT ignored, and Python then keeps ignoring it: the command would never stop).
    watch = subprocess.Popen([sys.executable, "-m", "local.commands.cli", "stats", "--watch", "0.2"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    tables: list[float] = []  # when each table's header line arrived

    def read() -> None:
        for line in iter(watch.stdout.readline, ""):
            if "waiting" in line:
                tables.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:  # counted from the first table, so a slow start-up under load does not count against it
        wait_until(lambda: len(tables) >= 4, 30, 0.05, "four tables from --watch")
    finally:
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=30)
        reader.join(timeout=10)
        watch.stderr.close()
    assert watch.returncode == 130
    assert tables[3] - tables[0] >= 0.4  # a table every 0.2 s, each flushed as printed (also into a pipe)


def test_jobs_list_pages_and_history_counts(stack):
    api, _ = stack
    ids = [api.request("POST", "/jobs", {"message": f"m{n}"}, headers={"X-API-Key": KEY})[2]["jobId"]
           for n in range(3)]
    first = forkline(api, "jobs", "list", "--state", "queued", "--limit", "2", "--json")
    assert first.returncode == 0, first.stderr
    page = json.loads(first.stdout)
    assert [j["id"] for j in page["items"]] == ids[:0:-1] and page["cursor"]
    rest = json.loads(forkline(api, "jobs", "list", "--state", "queued", "--cursor", page["cursor"], "--json").stdout)
    assert [j["id"] for j in rest["items"]] == [ids[0]] and rest["cursor"] is None
    human = forkline(api, "jobs", "list", "--limit", "2")
    assert ids[2] in human.stdout and "next page: --cursor" in human.stdout
    history = json.loads(forkline(api, "history", "--json").stdout)
    assert sum(b["accepted"] for b in history["buckets"]) == 3 and history["step"] == "minute"
    table = forkline(api, "history", "--step", "hour")
    assert table.returncode == 0 and "accepted" in table.stdout and " 3 " in f" {table.stdout} "
    refused = forkline(api, "jobs", "list", "--state", "waiting")
    assert refused.returncode == 1 and "state" in refused.stderr and refused.stderr.count("\n") == 1
    assert "progress" in human.stdout.splitlines()[0]
    later = api.request("POST", "/jobs", {"message": "later", "delay": 600}, headers={"X-API-Key": KEY})[2]["jobId"]
    promoted = forkline(api, "jobs", "promote", later)
    assert promoted.returncode == 0 and promoted.stdout.strip() == f"{later} queued: it starts now", promoted.stderr
    again = forkline(api, "jobs", "promote", later)
    assert again.returncode == 1 and "only a scheduled or retrying job can be started now" in again.stderr
