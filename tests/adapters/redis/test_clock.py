"""Redis's clock read from a host whose own clock is off: leases and schedule scores are written on
Redis's time, so another host reads them right."""

import datetime
import time

from adapters.huey.forkline_huey import queue_huey
from adapters.redis import keys
from adapters.redis.client import RedisHandle
from adapters.redis.clock import RedisClock

SKEW = 3600.0  # this "host" is an hour ahead
# Redis's time read locally is off by at most half a round trip: on a busy machine a round trip can take
# a few hundred ms, so half a second, against the hour (or two minutes) the host's own clock is off.
CLOSE = 0.5


def redis_time(handle: RedisHandle) -> float:
    seconds, micros = handle.client.time()
    return seconds + micros / 1e6


def on_redis_time(read, handle: RedisHandle) -> bool:
    """`read()` falls between two reads of Redis's TIME taken around it (give or take CLOSE)."""
    before = redis_time(handle)
    value = read()
    after = redis_time(handle)
    return before - CLOSE <= value <= after + CLOSE


def test_a_skewed_host_reads_redis_time(redis_url):
    handle = RedisHandle(redis_url)
    clock = RedisClock(handle, local=lambda: time.time() + SKEW)
    assert on_redis_time(clock, handle)
    assert abs(clock.offset() + SKEW) < CLOSE


def test_the_offset_is_measured_again_after_refresh(redis_url):
    handle = RedisHandle(redis_url)
    skew = [0.0]
    clock = RedisClock(handle, refresh=0.2, local=lambda: time.time() + skew[0])
    assert abs(clock.offset()) < CLOSE
    skew[0] = -120.0  # the host's clock is stepped back two minutes
    time.sleep(0.25)
    assert on_redis_time(clock, handle)


def test_redis_unreachable_keeps_the_last_offset(redis_url):
    good = RedisClock(RedisHandle(redis_url), local=lambda: time.time() + SKEW)
    measured = good.offset()
    good.redis = RedisHandle("redis://127.0.0.1:1/0", connect_timeout=0.2)
    good._next_check = float("-inf")
    assert good.offset() == measured  # no exception, no reset to 0


def test_leases_and_hueys_now_of_a_skewed_host_are_on_redis_time(redis_url, settings, ports):
    huey = queue_huey(keys.queue_keys("default"))
    huey.configure(redis_url, 30.0, ports.jobs.stores["default"], ports.dlq, 4, 2.0, 10.0)
    huey.storage.clock.local = lambda: time.time() + SKEW
    huey.storage.conn.lpush(huey.keys.list, b"default.job-1 2\nmessage")
    assert huey.storage.claim() is not None
    [(_, deadline)] = huey.storage.conn.zrange(huey.keys.leases, 0, -1, withscores=True)
    assert abs(deadline - (redis_time(huey.storage.redis) + 30)) < 2 * CLOSE
    # A retry's eta (Huey's now + delay) and the scheduler's due read use Huey's now: Redis's clock.
    assert on_redis_time(lambda: huey._get_timestamp().replace(tzinfo=datetime.UTC).timestamp(), huey.storage.redis)
