"""Script calls straight on the socket (adapters/redis/script_socket.py) against a real redis-server:
the same answers and errors as redis-py's path, a hang bounded by the socket timeout (the kernel's,
SO_RCVTIMEO) that opens the breaker, and a restarted Redis found again."""

import signal
import time

import pytest
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from adapters.redis import scripts
from adapters.redis.client import RedisHandle
from adapters.redis.script_socket import ScriptSocket
from adapters.redis.scripts import LuaScript
from harness.processes import RedisProcess

FAILING = LuaScript("failing", b"return redis.error_reply('ERR planted failure')", "f" * 40)


@pytest.fixture
def own_redis(tmp_path):
    server = RedisProcess(tmp_path / "redis", persist=False)
    server.start()
    yield server
    server.stop(signal.SIGKILL)


def progress(handle, job_key, fraction):
    return handle.run(scripts.PROGRESS, [job_key], [repr(fraction), "note"])


def test_calls_go_straight_to_the_socket_with_redis_py_s_answers_and_errors(own_redis):
    handle = RedisHandle(own_redis.url, socket_timeout=0.5)
    client = own_redis.client()
    client.hset("job:a", "state", "active")
    progress(handle, "job:a", 0.5)
    assert isinstance(handle._local.socket, ScriptSocket)  # a single Redis over TCP: the direct path
    assert client.hget("job:a", "progress") == b"0.5"
    client.script_flush()  # Redis forgot the scripts (a restart): NOSCRIPT, then the source is sent
    progress(handle, "job:a", 0.75)
    assert client.hget("job:a", "progress") == b"0.75"
    with pytest.raises(ResponseError, match="planted failure"):
        handle.run(FAILING, [], [])  # NOSCRIPT first (an unknown sha), then the script's error reply
    progress(handle, "job:a", 1.0)  # in step after an error reply
    assert client.hget("job:a", "progress") == b"1.0"


def test_a_hung_redis_costs_one_socket_timeout_then_the_breaker_answers_at_once(own_redis):
    handle = RedisHandle(own_redis.url, socket_timeout=0.3)
    own_redis.client().hset("job:b", "state", "active")
    progress(handle, "job:b", 0.1)
    own_redis.proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(RedisTimeout):
            progress(handle, "job:b", 0.2)
        waited = time.monotonic() - started
        assert 0.25 <= waited < 1.5, waited  # the kernel's receive timeout, once (no retry on a timeout)
        assert handle.breaker.open
        started = time.monotonic()
        with pytest.raises(Exception, match="circuit open"):
            progress(handle, "job:b", 0.3)
        assert time.monotonic() - started < 0.1
    finally:
        own_redis.proc.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 10
    while True:  # the breaker lets a probe through after its cooldown
        try:
            progress(handle, "job:b", 0.4)
            break
        except Exception:
            assert time.monotonic() < deadline, "Redis not reached again within 10 s"
            time.sleep(0.2)
    assert own_redis.client().hget("job:b", "progress") == b"0.4"


def test_a_restarted_redis_is_reached_again_by_the_next_call(own_redis):
    handle = RedisHandle(own_redis.url, socket_timeout=0.5)
    own_redis.client().hset("job:c", "state", "active")
    progress(handle, "job:c", 0.1)
    old_socket = handle._local.socket
    own_redis.stop(signal.SIGKILL)
    own_redis.start()  # same port, empty: the old connection is closed
    own_redis.client().hset("job:c", "state", "active")
    progress(handle, "job:c", 0.2)  # one retry on the broken connection, on a new socket
    assert handle._local.socket is not old_socket
    assert own_redis.client().hget("job:c", "progress") == b"0.2"
