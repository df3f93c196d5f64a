"""Script calls on a thread's own socket, below redis-py's connection layer: the web workers' submit path.

redis-py's connection opens the socket (the handshake: AUTH, SELECT, CLIENT SETINFO); for a single
Redis over plain TCP the calls are then made here, straight on the socket. The socket is made blocking
with the kernel's own send and receive timeouts (SO_SNDTIMEO, SO_RCVTIMEO): a call is one send and one
receive system call, where a Python socket with a timeout polls before each, and hiredis parses the
replies. Measured on `POST /jobs` (bench/RESULTS.md, 2026-12-06). A timeout, a closed socket and a
system error are the same exceptions redis-py raises; a timeout or a system error opens the
connection's breaker as redis-py's calls do, a connection closed by Redis does not (the retry of
RedisHandle.run reconnects at once after a Redis restart, where redis-py's path answers 503 until
the breaker's cooldown ends).

Left to redis-py's connection: Sentinel (a READONLY reply from a demoted master makes it ask the
sentinels again), TLS (an SSL socket) and Cluster (MOVED and ASK); RedisHandle picks the path.
"""

import socket
import struct
from typing import Any

import hiredis
from redis._parsers.base import BaseParser  # the error reply -> exception mapping of redis-py's own parsers
from redis.exceptions import ConnectionError, InvalidResponse
from redis.exceptions import TimeoutError as RedisTimeout

from adapters.redis.breaker import GuardedConnection

READ_SIZE = 65536


class ScriptSocket:
    """One thread's socket to a single Redis, opened by redis-py's `connection`."""

    def __init__(self, connection: GuardedConnection, timeout: float) -> None:
        self.connection = connection
        self.breaker = connection.breaker
        self.sock: socket.socket = connection._sock  # type: ignore[assignment]  # connected: not None
        whole = int(timeout)
        limit = struct.pack("ll", whole, int((timeout - whole) * 1_000_000))
        self.sock.settimeout(None)  # blocking: the kernel's timeouts below, not a poll before each call
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        self.reader = hiredis.Reader(protocolError=InvalidResponse, replyError=BaseParser.parse_error)

    @staticmethod
    def fits(connection: Any) -> bool:
        """Whether calls on this connection may go straight to its socket: plain TCP to a single Redis."""
        sock = getattr(connection, "_sock", None)
        return type(connection) is GuardedConnection and type(sock) is socket.socket \
            and sock.family in (socket.AF_INET, socket.AF_INET6)

    def exchange(self, commands: bytes, count: int) -> list[Any]:
        """Send packed commands in one write and read their `count` replies; an error reply is returned
        as its exception (redis-py's class for it), not raised."""
        breaker = self.breaker
        breaker.before_call(id(self.connection))
        replies: list[Any] = []
        try:
            self.sock.sendall(commands)
            reader, recv = self.reader, self.sock.recv
            while len(replies) < count:
                reply = reader.gets()
                if reply is not False:
                    replies.append(reply)
                    continue
                data = recv(READ_SIZE)
                if not data:
                    # Not a Redis that hangs or refuses: one that closed this connection (restarted, or
                    # CLIENT KILL). The breaker stays closed, so RedisHandle.run's retry reconnects at once.
                    raise ConnectionError("Connection closed by server.")
                reader.feed(data)
        except BlockingIOError:  # SO_RCVTIMEO or SO_SNDTIMEO ran out
            breaker.failed()
            raise RedisTimeout("Timeout reading from socket") from None
        except ConnectionError:
            raise
        except (BrokenPipeError, ConnectionResetError):  # closed too, found by the send or a reset
            raise ConnectionError("Connection closed by server.") from None
        except OSError as exc:
            breaker.failed()
            raise ConnectionError(f"Error while reading from socket: {exc.args}") from None
        breaker.succeeded()
        return replies
