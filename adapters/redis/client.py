"""Redis clients created lazily, per process (never shared across a fork), and the outage log."""

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import hiredis
from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.exceptions import ConnectionError, NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeout
from redis.retry import Retry
from redis.sentinel import Sentinel

from adapters.process_id import current_pid
from adapters.redis.breaker import GUARDED_BY_SCHEME, Breaker, breaker_for
from adapters.redis.script_socket import ScriptSocket
from adapters.redis.scripts import LuaScript
from functions.errors import NotAcknowledged, Unavailable

# Published on the same connection before WAIT: a propagated write, so WAIT covers everything the primary
# had written until then, also when the script itself wrote nothing (a repeat finding its key held by an
# unacknowledged submit). Redis 7.0 records the offset at a client's every command, reads included, so
# there the script alone would do; WAIT is documented for the client's writes, and this holds either way.
ACK_MARK = ("PUBLISH", "forkline:replica-acks", "")


def cluster_seeds(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A cluster URL may name several seed nodes, `redis://user:pw@h1:7000,h2:7000/0`: (the URL
    with the first one only, every seed as (host, port))."""
    parts = urlsplit(url)
    credentials, at, hosts = parts.netloc.rpartition("@")
    seeds = []
    for seed in hosts.split(","):
        host, colon, port = seed.strip().rpartition(":")
        seeds.append((host, int(port)) if colon and port.isdigit() else (seed.strip(), 6379))
    first = f"{credentials}{at}{hosts.split(',')[0].strip()}"
    return parts._replace(netloc=first).geturl(), seeds


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis is: a URL (`redis://`, `rediss://` for TLS, user and password in it); Sentinel
    addresses and a master name, the URL then giving only the credentials, database and TLS; or,
    with `cluster`, a Redis Cluster whose seed nodes the URL names.

    Every process and every client forkline makes reaches Redis through one of these.
    """

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = ""
    cluster: bool = False

    def connect(self, socket_timeout: float, connect_timeout: float) -> Redis:
        """A client (no connection is opened until its first command)."""
        # One quick retry hides a stale pooled socket after a Redis restart or a failover.
        options: dict[str, Any] = dict(socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout,
                                       retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
                                       health_check_interval=30)
        if self.cluster:
            # The cluster client routes each command by its key's slot and follows MOVED and ASK.
            url, seeds = cluster_seeds(self.url)
            return RedisCluster.from_url(url, startup_nodes=[ClusterNode(h, p) for h, p in seeds[1:]],  # type: ignore[return-value]
                                         socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout,
                                         health_check_interval=30)
        if not self.sentinels:
            # Every call through this client (and the dedicated script connections made from its pool)
            # passes this process's breaker for the target: a Redis that hangs costs one timeout, not one
            # per request.
            guarded = GUARDED_BY_SCHEME[urlsplit(self.url).scheme]
            return Redis.from_url(self.url, connection_class=guarded, breaker=breaker_for(self.url), **options)
        parsed = parse_url(self.url)
        credentials: dict[str, Any] = {k: parsed[k] for k in ("username", "password", "db")
                                       if parsed.get(k) is not None}
        tls: dict[str, Any] = {k: v for k, v in parsed.items() if k.startswith("ssl_")}
        if urlsplit(self.url).scheme == "rediss":
            tls["ssl"] = True
        sentinel = Sentinel(list(self.sentinels), socket_timeout=connect_timeout,
                            socket_connect_timeout=connect_timeout)
        return sentinel.master_for(self.master, **options, **credentials, **tls)

    def describe(self) -> str:
        """For logs: no password."""
        if self.cluster:
            return "cluster seeded by " + ",".join(f"{h}:{p}" for h, p in cluster_seeds(self.url)[1])
        if self.sentinels:
            return f"sentinel master {self.master!r} via " + ",".join(f"{h}:{p}" for h, p in self.sentinels)
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            return f"unix://{parts.path}"
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


class RedisHandle:
    """Holds the target; builds the client on first use in each process.

    The supervisor imports the app before forking; this keeps it from ever
    opening a connection or pool that a child could inherit.
    """

    def __init__(self, target: RedisTarget | str, socket_timeout: float = 5.0, connect_timeout: float = 1.0,
                 replica_acks: int = 0, ack_timeout_ms: int = 100):
        self.target = RedisTarget(target) if isinstance(target, str) else target
        self.connect_timeout = connect_timeout
        self.replica_acks, self.ack_timeout_ms = replica_acks, ack_timeout_ms
        # A WAIT may take its whole timeout before Redis answers.
        self.socket_timeout = socket_timeout + (ack_timeout_ms / 1000 if replica_acks else 0)
        self._client: Redis | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def breaker(self) -> Breaker:
        """This process's breaker for the target (it guards a single Redis, plain or TLS; not Sentinel
        or Cluster, whose clients manage their own connections)."""
        return breaker_for(self.target.url)

    @property
    def client(self) -> Redis:
        if self._pid != os.getpid() or self._client is None:
            with self._lock:
                if self._pid != os.getpid() or self._client is None:
                    self._client = self.target.connect(self.socket_timeout, self.connect_timeout)
                    self._pid = os.getpid()
        return self._client

    def run(self, script: LuaScript, keys: list[Any], args: list[Any]) -> Any:
        """Run a Lua script on this thread's own connection (every script goes through here).

        Measured here with a trivial script, a call through the client costs
        ~115 us and one on a dedicated connection with hiredis packing ~45 us:
        the client's pooling and instrumentation are the difference, and a
        connection per thread needs neither. Like the client, it retries once
        when the connection was broken (Redis restarted).
        """
        if self.target.cluster:
            return self._call_in_cluster(script, keys, args)
        try:
            return self._call(script, keys, args)
        except ConnectionError:
            return self._call(script, keys, args)

    def run_acknowledged(self, script: LuaScript, keys: list[Any], args: list[Any]) -> Any:
        """`run`, then, with REDIS_REPLICA_ACKS > 0, `WAIT` on the same connection (WAIT cannot run in a
        script) in the same round trip: NotAcknowledged unless that many replicas have everything the
        primary wrote up to the script. For the writes that create or re-queue a job, and cancel or promote one."""
        if not self.replica_acks:
            return self.run(script, keys, args)
        wait = (ACK_MARK, ("WAIT", self.replica_acks, self.ack_timeout_ms))
        try:
            result, _, acknowledged = self._call(script, keys, args, then=wait)
        except ConnectionError:
            result, _, acknowledged = self._call(script, keys, args, then=wait)
        if acknowledged < self.replica_acks:
            replica_acks.failed(NotAcknowledged(self.replica_acks, acknowledged, self.ack_timeout_ms))
            raise NotAcknowledged(self.replica_acks, acknowledged, self.ack_timeout_ms)
        replica_acks.succeeded()
        return result

    def _call_in_cluster(self, script: LuaScript, keys: list[Any], args: list[Any]) -> Any:
        """Through the cluster client: to the master of the keys' slot (every script's keys share one
        queue's hash tag), following MOVED and ASK after a resharding or a failover."""
        try:
            return self.client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:  # this master has not run it yet
            return self.client.execute_command("EVAL", script.source, len(keys), *keys, *args)

    def _call(self, script: LuaScript, keys: list[Any], args: list[Any],
              then: tuple[tuple[Any, ...], ...] = ()) -> Any:
        """The script's answer; with `then`, commands sent in the same write after it: a tuple of the
        script's answer and theirs."""
        local = self._local
        if getattr(local, "pid", 0) != current_pid():
            local.connection = self.client.connection_pool.make_connection()
            local.pid, local.connected = current_pid(), False
        connection = local.connection
        try:
            if not local.connected:
                # Through connect(): a Sentinel-managed connection asks the sentinels for the master
                # there (a send on a closed connection would not), so it follows a failover.
                connection.connect()
                local.connected = True
                local.socket = ScriptSocket(connection, self.socket_timeout) if ScriptSocket.fits(connection) else None
            # hiredis packs in ~10 us what redis-py's generic packer does in ~50.
            packed_then = [hiredis.pack_command(command) for command in then]
            if local.socket is not None:
                return self._exchange(local.socket, script, keys, args, packed_then)
            connection.send_packed_command(
                [hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args)), *packed_then])
            try:
                return self._read_after(connection, len(then))
            except NoScriptError:
                connection.send_packed_command(
                    [hiredis.pack_command(("EVAL", script.source, len(keys), *keys, *args)), *packed_then])
                return self._read_after(connection, len(then))
        except (ConnectionError, RedisTimeout, OSError):
            connection.disconnect()
            local.connected = False
            raise

    @staticmethod
    def _exchange(sock: ScriptSocket, script: LuaScript, keys: list[Any], args: list[Any],
                  packed_then: list[bytes]) -> Any:
        """`_call` straight on the socket (adapters/redis/script_socket.py), with the same answers."""
        then = b"".join(packed_then)
        replies = sock.exchange(hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args)) + then,
                                1 + len(packed_then))
        if isinstance(replies[0], NoScriptError):
            replies = sock.exchange(hiredis.pack_command(("EVAL", script.source, len(keys), *keys, *args)) + then,
                                    1 + len(packed_then))
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return tuple(replies) if packed_then else replies[0]

    @staticmethod
    def _read_after(connection: Any, count: int) -> Any:
        """The script's answer and, when `count` commands followed it, theirs: read even when the script
        failed, so the connection stays in step."""
        try:
            result = connection.read_response()
        except ResponseError:
            for _ in range(count):
                connection.read_response()
            raise
        return (result, *(connection.read_response() for _ in range(count))) if count else result

    def close(self) -> None:
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
        self._client = None


class OutageLog:
    """Logs a dependency going away and coming back: one line per change, not per failed call."""

    def __init__(self, name: str, down: str = "unreachable (%s); retrying with backoff",
                 up: str = "reachable again after %.1fs"):
        self.name, self.down, self.up = name, down, up
        self.down_since: float | None = None
        self._lock = threading.Lock()
        self._log = logging.getLogger("forkline.dependency")

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.down_since is not None:
                return
            self.down_since = time.monotonic()
        self._log.warning("%s " + self.down, self.name, type(exc).__name__,
                          extra={"event": "dependency_down", "dependency": self.name})

    def succeeded(self) -> None:
        if self.down_since is None:  # the hot path: one attribute read
            return
        with self._lock:
            if self.down_since is None:
                return
            outage, self.down_since = time.monotonic() - self.down_since, None
        self._log.warning("%s " + self.up, self.name, outage,
                          extra={"event": "dependency_up", "dependency": self.name, "outage": round(outage, 3)})


# One per process (a forked child inherits its parent's view until its first call).
redis_outages = OutageLog("redis")
replica_acks = OutageLog("redis replicas", down="not acknowledging writes in time (%s): answering 503",
                         up="acknowledging writes again after %.1fs")


def unavailable(exc: RedisError) -> Unavailable:
    """The 503 for a failed Redis call (and the outage noted once)."""
    redis_outages.failed(exc)
    return Unavailable(f"The job store is unavailable ({type(exc).__name__})", dependency="redis")
