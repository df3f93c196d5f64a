"""Redis clients created lazily, per process: never shared across a fork."""

import os
import threading

from redis import Redis
from redis.commands.core import Script
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


class RedisHandle:
    """Holds the URL; builds the client on first use in each process.

    The supervisor imports the app before forking; this keeps it from ever
    opening a connection or pool that a child could inherit.
    """

    def __init__(self, url: str, socket_timeout: float = 5.0, connect_timeout: float = 1.0):
        self.url = url
        self.socket_timeout = socket_timeout
        self.connect_timeout = connect_timeout
        self._client: Redis | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def client(self) -> Redis:
        if self._pid != os.getpid() or self._client is None:
            with self._lock:
                if self._pid != os.getpid() or self._client is None:
                    self._client = Redis.from_url(
                        self.url,
                        socket_timeout=self.socket_timeout,
                        socket_connect_timeout=self.connect_timeout,
                        # One quick retry hides a stale pooled socket after a Redis restart.
                        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
                        health_check_interval=30,
                    )
                    self._pid = os.getpid()
        return self._client

    def close(self) -> None:
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
        self._client = None


def lua_script(text: str) -> Script:
    """A Lua script object not bound to any client: call it with client=..."""
    return Script(None, text.encode())
