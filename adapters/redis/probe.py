"""Redis health for GET /health, without a Redis round trip on every request."""

import time

from redis.cluster import RedisCluster
from redis.exceptions import RedisError

from adapters.redis.client import RedisHandle, RedisTarget, redis_outages


class RedisProbe:
    """PINGs Redis at most once per `ttl` seconds and remembers the answer.

    Its own client has short timeouts, so /health answers within about a
    second even while Redis is unreachable.
    """

    def __init__(self, url: RedisTarget | str, ttl: float = 1.0, timeout: float = 0.5):
        self.redis = RedisHandle(url, socket_timeout=timeout, connect_timeout=timeout)
        self.ttl = ttl
        self._checked_at = float("-inf")
        self._up = False

    def redis_up(self) -> bool:
        now = time.monotonic()
        if self.redis.breaker.open:  # a call of this process just timed out: down now, not at the next ping
            self._up = False
        elif now - self._checked_at >= self.ttl:
            try:
                self._up = bool(self.redis.client.ping())
            except (RedisError, OSError) as exc:
                self._up = False
                redis_outages.failed(exc)
            else:
                redis_outages.succeeded()
            self._checked_at = time.monotonic()
        return self._up

    def dependencies(self) -> dict[str, bool]:
        return {"redis": self.redis_up()}


def maxmemory_policy(redis: RedisHandle) -> str:
    """Redis's `maxmemory-policy`, from INFO (managed services often refuse CONFIG GET); in a
    cluster, the first master's that is not `noeviction`, if any."""
    if redis.target.cluster:
        found = redis.client.info("memory", target_nodes=RedisCluster.PRIMARIES)
        policies = sorted({str(node.get("maxmemory_policy", "noeviction")) for node in found.values()})
        return next((p for p in policies if p != "noeviction"), "noeviction")
    return str(redis.client.info("memory").get("maxmemory_policy", "noeviction"))
