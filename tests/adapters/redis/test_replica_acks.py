"""REDIS_REPLICA_ACKS on a real primary and replica: a submit, a cancel and a replay are answered only
once the replica has them; with the replica stopped (SIGSTOP) they answer 503 with Retry-After within
the acknowledgement timeout, and a retry with the same Idempotency-Key never makes a second job."""

import contextlib
import os
import signal
import time

import falcon.testing
import pytest

from adapters.http.app import AppDeps, create_app
from adapters.redis import keys
from adapters.settings import Settings
from adapters.wiring import build_ports
from functions.errors import NotAcknowledged
from harness.processes import RedisProcess, wait_until
from tests.figures import report

ACK_TIMEOUT_MS = 100
BODY = {"message": "kept", "shouldFail": False}


@pytest.fixture
def primary_and_replica(tmp_path):
    primary = RedisProcess(tmp_path / "primary")
    primary.start()
    replica = RedisProcess(tmp_path / "replica", extra=("--replicaof", "127.0.0.1", str(primary.port)))
    try:
        replica.start()
        wait_until(lambda: replica.client().info("replication").get("master_link_status") == "up", 15, 0.1,
                   "the replica to sync")
        yield primary, replica
    finally:
        if replica.proc is not None:
            os.kill(replica.proc.pid, signal.SIGCONT)
        replica.stop()
        primary.stop()


@contextlib.contextmanager
def stopped(process: RedisProcess):
    """The process frozen (SIGSTOP) for the block: it keeps its connections and answers nothing."""
    assert process.proc is not None
    os.kill(process.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.proc.pid, signal.SIGCONT)


def settings_for(primary: RedisProcess, tmp_path, acks: int) -> Settings:
    return Settings(redis_url=primary.url, redis_replica_acks=acks, redis_replica_ack_timeout_ms=ACK_TIMEOUT_MS,
                    log_dir=str(tmp_path / "logs"), data_dir=str(tmp_path / "data"), _env_file=None)


def client_for(settings: Settings):
    ports = build_ports(settings)
    deps = AppDeps(jobs=ports.jobs, dlq=ports.dlq, probe=ports.probe, max_attempts=settings.max_attempts)
    return falcon.testing.TestClient(create_app(deps)), ports


def on_replica(replica: RedisProcess, job_id: str) -> bool:
    return bool(replica.client().exists(keys.keys_of(job_id).job(job_id)))


def test_an_acknowledged_submit_is_on_the_replica_when_answered(primary_and_replica, tmp_path):
    primary, replica = primary_and_replica
    client, _ = client_for(settings_for(primary, tmp_path, acks=1))
    for _ in range(20):
        posted = client.simulate_post("/jobs", json=BODY)
        assert posted.status_code == 202
        assert on_replica(replica, posted.json["jobId"])  # read at once: WAIT returned after the replica had it


def test_a_stopped_replica_makes_submits_answer_503_and_a_keyed_retry_makes_one_job(primary_and_replica, tmp_path):
    primary, replica = primary_and_replica
    settings = settings_for(primary, tmp_path, acks=1)
    client, _ = client_for(settings)
    other_process, _ = client_for(settings)  # another web worker: its own connection to the primary
    headers = {"Idempotency-Key": "order-17"}
    with stopped(replica):
        started = time.monotonic()
        refused = client.simulate_post("/jobs", json=BODY, headers=headers)
        took = time.monotonic() - started
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "1" and refused.json["code"] == "service_unavailable"
        assert refused.json["details"] == {"dependency": "redis replicas", "acknowledged": 0, "required": 1}
        assert "Idempotency-Key" in refused.json["message"]
        assert took < ACK_TIMEOUT_MS / 1000 + 1.0, took  # the timeout, not a hang (margin for a busy machine)
        # The repeat finds the key held on the primary, but its job is on no replica yet: still 503.
        assert other_process.simulate_post("/jobs", json=BODY, headers=headers).status_code == 503
    retried = other_process.simulate_post("/jobs", json=BODY, headers=headers)
    assert retried.status_code == 200, retried.text  # a repeat: the job the first request wrote
    job_id = retried.json["jobId"]
    assert on_replica(replica, job_id)
    queued = primary.client().llen(keys.queue_keys("default").list)
    assert queued == 1  # one job, however many tries
    report(f"replica acks: a submit with the replica stopped answered 503 in {took * 1000:.0f} ms "
           f"(REDIS_REPLICA_ACK_TIMEOUT_MS={ACK_TIMEOUT_MS})")


def test_a_cancel_waits_for_the_replica_too(primary_and_replica, tmp_path):
    primary, replica = primary_and_replica
    client, _ = client_for(settings_for(primary, tmp_path, acks=1))
    job_id = client.simulate_post("/jobs", json={**BODY, "delay": 60}).json["jobId"]
    with stopped(replica):
        assert client.simulate_delete(f"/jobs/{job_id}").status_code == 503
    again = client.simulate_delete(f"/jobs/{job_id}")  # cancelled by the first call, now on the replica
    assert again.status_code == 409 and again.json["details"]["state"] == "cancelled"
    assert replica.client().hget(keys.keys_of(job_id).job(job_id), "state") == b"cancelled"


def test_an_unacknowledged_requeue_raises_and_without_acks_nothing_waits(primary_and_replica, tmp_path):
    primary, replica = primary_and_replica
    acked, plain = build_ports(settings_for(primary, tmp_path, acks=1)), build_ports(settings_for(primary, tmp_path, 0))
    job = client_for(settings_for(primary, tmp_path, 0))[0].simulate_post("/jobs", json=BODY).json["jobId"]
    record = plain.jobs.get(job)
    assert record is not None
    with stopped(replica):
        with pytest.raises(NotAcknowledged):
            acked.jobs.requeue(record)
        plain.jobs.requeue(record)  # REDIS_REPLICA_ACKS=0: answered by the primary alone, as before
