"""Checks a command makes before it starts anything: Redis must not evict keys.

An evicting Redis (`maxmemory-policy` other than `noeviction`) drops job records,
queue messages and leases when it fills up, and nothing notices: jobs are lost
silently. As BullMQ does, forkline refuses to start on one unless told otherwise.
"""

import logging
import sys
import time

from redis.exceptions import RedisError

from adapters.redis.client import RedisHandle
from adapters.redis.probe import maxmemory_policy
from adapters.settings import Settings
from adapters.wiring import redis_target

log = logging.getLogger("forkline.supervisor")
REACH_FOR = 3.0  # seconds to wait for Redis before starting without the check


def eviction_refused(settings: Settings, wait: float = REACH_FOR) -> bool:
    """True (with one line on stderr) when Redis may evict keys and FORKLINE_ALLOW_EVICTION is not set.

    A Redis that does not answer within `wait` seconds is not checked: the processes start
    and wait for it as in any outage (one warning line says so).
    """
    target = redis_target(settings)
    redis = RedisHandle(target, socket_timeout=1.0, connect_timeout=0.5)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                policy = maxmemory_policy(redis)
                break
            except (RedisError, OSError) as exc:
                if time.monotonic() >= deadline:
                    print(f"forkline: warning: could not check Redis's maxmemory-policy ({target.describe()}: "
                          f"{type(exc).__name__}); starting, and waiting for Redis", file=sys.stderr)
                    return False
                time.sleep(0.2)
    finally:
        redis.close()
    if policy == "noeviction":
        return False
    if settings.forkline_allow_eviction:
        print(f"forkline: warning: Redis's maxmemory-policy is {policy}: when it fills up it evicts keys and jobs "
              "are lost without a trace (FORKLINE_ALLOW_EVICTION=true)", file=sys.stderr)
        return False
    print(f"forkline: Redis's maxmemory-policy is {policy}, which evicts keys (jobs would be lost silently): "
          "set it to noeviction, or FORKLINE_ALLOW_EVICTION=true to start anyway", file=sys.stderr)
    return True
