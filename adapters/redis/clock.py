"""Redis's clock, read locally: the time every host agrees on.

Lease deadlines, schedule scores (delays and retries), the DLQ's pending holds and
heartbeats are compared across hosts, so they must not depend on the hosts' clocks
agreeing. They are all taken from a RedisClock: this host's clock plus the offset
to Redis's `TIME`, measured over one round trip and refreshed every `refresh`
seconds. A host whose clock is minutes off (or jumps) therefore still writes
deadlines that the other hosts read right, to within the round trip's half
(sub-millisecond on one network) plus the drift between refreshes.
"""

import time
from collections.abc import Callable

from redis.exceptions import RedisError

from adapters.redis.client import RedisHandle

RETRY_AFTER_FAILURE = 1.0  # seconds before a failed measurement is tried again


class RedisClock:
    """Callable: Unix seconds on Redis's clock. Safe across a fork (the offset is a number; the
    handle opens its connection per process) and between threads (a race measures twice)."""

    def __init__(self, redis: RedisHandle, refresh: float = 30.0, local: Callable[[], float] = time.time):
        self.redis = redis
        self.refresh = refresh
        self.local = local
        self._offset = 0.0
        self._next_check = float("-inf")

    def __call__(self) -> float:
        return self.local() + self.offset()

    def offset(self) -> float:
        """Redis's time minus this host's (seconds); the last one measured while Redis is unreachable."""
        if time.monotonic() >= self._next_check:
            self._measure()
        return self._offset

    def _measure(self) -> None:
        try:
            before = self.local()
            seconds, micros = self.redis.client.time()
            after = self.local()
        except (RedisError, OSError):
            self._next_check = time.monotonic() + RETRY_AFTER_FAILURE
            return
        self._offset = seconds + micros / 1e6 - (before + after) / 2
        self._next_check = time.monotonic() + self.refresh
