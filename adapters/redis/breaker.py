"""A circuit breaker on a Redis target's calls, per process, and the redis-py connections that pass it."""

import os
import threading
import time
from typing import Any

from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError
from redis.exceptions import TimeoutError as RedisTimeout


class Breaker:
    """A circuit breaker on one Redis target's calls in this process. Closed, calls go through; a call
    that times out or cannot connect opens it: for `cooldown` seconds every call fails at once (a 503
    with Retry-After), so no worker waits out a Redis that hangs request after request; then the next
    call is let through alone (half-open): its answer closes the breaker, its failure opens it again."""

    def __init__(self, cooldown: float = 1.0):
        self.cooldown = cooldown
        self._open_until = 0.0  # monotonic; 0 while closed
        self._probe: int | None = None  # while half-open: the connection whose call finds out
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return self._open_until != 0.0 and (time.monotonic() < self._open_until or self._probe is not None)

    def before_call(self, caller: int) -> None:
        """Raise ConnectionError at once while open; `caller` identifies the connection making the call."""
        if self._open_until == 0.0:  # closed: the hot path, one attribute read
            return
        with self._lock:
            if self._probe == caller:
                return
            if time.monotonic() < self._open_until or self._probe is not None:
                raise ConnectionError("Redis did not answer a moment ago (circuit open)")
            self._probe = caller  # half-open: this connection's call finds out

    def failed(self) -> None:
        with self._lock:
            self._open_until, self._probe = time.monotonic() + self.cooldown, None

    def succeeded(self) -> None:
        if self._open_until == 0.0:
            return
        with self._lock:
            self._open_until, self._probe = 0.0, None


_breakers: dict[tuple[int, str], Breaker] = {}


def breaker_for(url: str) -> Breaker:
    """This process's breaker for a Redis target (a forked child gets its own)."""
    return _breakers.setdefault((os.getpid(), url), Breaker())


class _Guarded:
    """A redis-py connection whose sends and reads go through a Breaker."""

    breaker: Breaker

    def __init__(self, *args: Any, breaker: Breaker, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.breaker = breaker

    def connect(self) -> None:
        if getattr(self, "_sock", None) is None:  # a new socket (a refused one fails here, not in a send)
            self.breaker.before_call(id(self))
            try:
                super().connect()  # type: ignore[misc]
            except (ConnectionError, RedisTimeout, OSError):
                self.breaker.failed()
                raise

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self.breaker.before_call(id(self))
        try:
            super().send_packed_command(command, check_health)  # type: ignore[misc]
        except (ConnectionError, RedisTimeout, OSError):
            self.breaker.failed()
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            response = super().read_response(*args, **kwargs)  # type: ignore[misc]
        except (ConnectionError, RedisTimeout, OSError):
            self.breaker.failed()
            raise
        self.breaker.succeeded()
        return response


class GuardedConnection(_Guarded, Connection):
    pass


class GuardedSSLConnection(_Guarded, SSLConnection):
    pass


class GuardedUnixConnection(_Guarded, UnixDomainSocketConnection):
    pass


# The connection class redis-py would pick for a URL's scheme, with the breaker in front.
GUARDED_BY_SCHEME: dict[str, type[_Guarded]] = {
    "redis": GuardedConnection, "rediss": GuardedSSLConnection, "unix": GuardedUnixConnection}
