"""The per-process circuit breaker on a Redis target's calls: closed, open for its cooldown after a
timeout or a refused connection, then one call let through (half-open) that closes or reopens it."""

import pytest
from redis.exceptions import ConnectionError

import adapters.redis.breaker as breaker_module
from adapters.redis.breaker import Breaker
from adapters.redis.client import RedisHandle
from adapters.settings import REDIS_SCHEMES


@pytest.fixture
def clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(breaker_module.time, "monotonic", lambda: now[0])
    return now


def test_open_for_the_cooldown_then_one_probe_that_closes_it(clock):
    breaker = Breaker(cooldown=1.0)
    breaker.before_call(1)  # closed: through
    breaker.failed()
    assert breaker.open
    with pytest.raises(ConnectionError, match="circuit open"):
        breaker.before_call(1)
    clock[0] += 1.0
    breaker.before_call(1)  # half-open: connection 1's call is the probe
    breaker.before_call(1)  # (its send after its connect)
    with pytest.raises(ConnectionError):
        breaker.before_call(2)  # only one connection finds out
    breaker.succeeded()
    assert not breaker.open
    breaker.before_call(2)


def test_a_failed_probe_opens_it_again_for_a_full_cooldown(clock):
    breaker = Breaker(cooldown=1.0)
    breaker.failed()
    clock[0] += 1.0
    breaker.before_call(1)
    breaker.failed()
    clock[0] += 0.9
    with pytest.raises(ConnectionError):
        breaker.before_call(1)
    clock[0] += 0.1
    breaker.before_call(2)


def test_a_real_refused_connection_opens_the_target_s_breaker_and_calls_fail_at_once(redis_url):
    from harness.processes import free_port

    dead = RedisHandle(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.5, connect_timeout=0.5)
    with pytest.raises(ConnectionError):
        dead.client.ping()
    assert dead.breaker.open
    with pytest.raises(ConnectionError, match="circuit open"):
        dead.client.ping()
    alive = RedisHandle(redis_url)
    assert alive.client.ping() and not alive.breaker.open  # one breaker per target


def test_every_scheme_settings_accept_has_its_guarded_connection_class():
    assert set(breaker_module.GUARDED_BY_SCHEME) == set(REDIS_SCHEMES)
