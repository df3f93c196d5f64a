"""Managed Redis: TLS (`rediss://`) with an ACL user for every process, and the start-up refusal of a
Redis whose maxmemory-policy evicts keys (as BullMQ refuses it)."""

import signal
import subprocess

import pytest
import redis

from harness.processes import FORKLINE, ROOT, Forkline, RedisProcess, wait_until
from tests.redis_setups import PASSWORD, USER, TLSRedis

ENV = {"WEB_CONCURRENCY": "1", "JOB_BACKOFF_BASE": "0.2", "GRACEFUL_TIMEOUT": "10"}


@pytest.fixture
def tls_redis(tmp_path):
    server = TLSRedis(tmp_path / "tls-redis")
    server.start()
    yield server
    server.stop()


def test_every_process_works_over_tls_with_an_acl_user(tmp_path, tls_redis):
    # The server refuses a plain connection and the default user: only TLS with the ACL user gets in.
    plain = redis.Redis(port=tls_redis.tls_port, username=USER, password=PASSWORD, socket_timeout=2)
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
        plain.ping()
    anonymous = redis.Redis.from_url(tls_redis.url.replace(f"{USER}:{PASSWORD}@", ""), socket_timeout=2)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()

    env = {**ENV, "REDIS_URL": tls_redis.url}
    api = Forkline("serve", tmp_path, env).start()
    worker = Forkline("worker", tmp_path, env).start(wait_http=False)
    try:
        assert api.request("GET", "/health")[2]["dependencies"] == {"redis": "up"}
        ids = [api.request("POST", "/jobs", {"message": f"tls {n}"})[2]["jobId"] for n in range(10)]
        failing = api.request("POST", "/jobs", {"message": "dead", "shouldFail": True})[2]["jobId"]
        done = wait_until(lambda: all(api.request("GET", f"/jobs/{i}")[2]["state"] == "completed" for i in ids),
                          30, 0.2, "the jobs to complete over TLS")
        assert done
        wait_until(lambda: api.request("GET", f"/jobs/{failing}")[2]["state"] == "dead", 30, 0.2, "the DLQ")
        stats = api.request("GET", "/queue/stats")[2]
        assert (stats["completed"], stats["failed"], stats["dlq"]) == (10, 1, 1)
        workers = api.request("GET", "/workers")[2]["items"]
        assert len(workers) == 1  # the consumer's heartbeat travels over TLS too
    finally:
        assert worker.stop(signal.SIGTERM, timeout=30) == 0, worker.output()[-2000:]
        assert api.stop(signal.SIGTERM, timeout=30) == 0, api.output()[-2000:]
    client = redis.Redis.from_url(tls_redis.url)
    assert client.acl_whoami() == USER and client.dbsize() > 0  # the keys were written by this user, over TLS
    client.close()


@pytest.fixture(scope="module")
def evicting_redis(tmp_path_factory):
    server = RedisProcess(tmp_path_factory.mktemp("evicting"), persist=False,
                          extra=("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"))
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("command", ["serve", "worker", "run"])
def test_an_evicting_redis_is_refused_at_start_with_one_line_and_status_2(tmp_path, evicting_redis, command):
    result = subprocess.run(FORKLINE + [command], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "REDIS_URL": evicting_redis.url,
                                 "PORT": "3999", "LOG_DIR": str(tmp_path / "logs")})
    assert result.returncode == 2, result.stderr
    assert result.stderr == ("forkline: Redis's maxmemory-policy is allkeys-lru, which evicts keys (jobs would be "
                             "lost silently): set it to noeviction, or FORKLINE_ALLOW_EVICTION=true to start anyway\n")
    client = evicting_redis.client()
    assert client.dbsize() == 0  # nothing was written
    client.close()


def test_allow_eviction_starts_with_a_warning(tmp_path, evicting_redis):
    api = Forkline("serve", tmp_path, {**ENV, "REDIS_URL": evicting_redis.url, "FORKLINE_ALLOW_EVICTION": "true"})
    api.start()
    try:
        assert api.request("POST", "/jobs", {"message": "kept"})[0] == 202
    finally:
        assert api.stop(signal.SIGTERM, timeout=30) == 0
    assert "warning: Redis's maxmemory-policy is allkeys-lru" in api.output()
    client = evicting_redis.client()
    client.flushall()
    client.close()


def test_the_session_redis_is_noeviction_and_starts_without_a_word(tmp_path, redis_url):
    api = Forkline("serve", tmp_path, {**ENV, "REDIS_URL": redis_url}).start()
    assert api.stop(signal.SIGTERM, timeout=30) == 0
    assert "maxmemory-policy" not in api.output()
