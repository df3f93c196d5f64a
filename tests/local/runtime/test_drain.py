"""Draining HTTP workers while an idle keep-alive client holds a connection (no proxy in front).

The client here is the worst case: it ignores `Connection: close` and never hangs up,
so only the drain deadline can end the old worker.
"""

import json
import os
import signal
import socket
import time

import pytest

from harness.processes import Forkline, children_of, is_gone, request, wait_until

GRACE = 4.0
# What a busy 2-core machine may add to a bound (a deadline's own precision is next_wakeup's unit test).
BUSY = 1.5


class KeepAliveClient:
    """One raw HTTP/1.1 connection, kept open whatever the server's headers say."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""

    def get(self, path: str = "/") -> tuple[int, list[str], dict]:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = [line.lower() for line in lines[1:]]
        length = int(next(h.split(":")[1] for h in headers if h.startswith("content-length:")))
        while len(self.buffer) < length:
            self.buffer += self._recv()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, json.loads(body)

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        return chunk

    def closed_by_server(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve(tmp_path, redis_url):
    started = []

    def start(**env):
        fl = Forkline("serve", tmp_path, {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "1",
                                          "GRACEFUL_TIMEOUT": str(GRACE), **env})
        started.append(fl)
        return fl.start()

    yield start
    for fl in started:
        fl.stop(signal.SIGTERM, timeout=20)


def probe_new_connections(port: int, old_pid: int, count: int = 5) -> list[float]:
    """Open `count` fresh connections one after another; each must be answered, by another worker."""
    took = []
    for _ in range(count):
        started = time.monotonic()
        status, _, body = request(port, "GET", "/", timeout=5)
        took.append(time.monotonic() - started)
        assert status == 200 and body["workerPID"] != old_pid
    return took


def gone_within(pid: int, timeout: float) -> float:
    started = time.monotonic()
    wait_until(lambda: is_gone(pid), timeout, 0.02, f"pid {pid} gone")
    return time.monotonic() - started


def drain_lines(fl: Forkline, event: str) -> list[dict]:
    return [json.loads(line) for line in fl.output().splitlines() if f'"event": "{event}"' in line]


def death_of(fl: Forkline, pid: int) -> dict:
    """The supervisor's line for `pid`'s death (written just after it reaps it)."""
    return wait_until(lambda: next((d for d in drain_lines(fl, "worker_died") if d["child"] == pid), None),
                      5, 0.02, f"the death of {pid} logged")


def test_a_retiring_worker_is_replaced_at_once_while_an_idle_client_holds_it(serve):
    fl = serve(WEB_MAX_REQUESTS="10", WEB_MAX_REQUESTS_JITTER="0")
    client = KeepAliveClient(fl.port)
    try:
        for _ in range(12):  # the start-up health checks used some of the ten
            status, headers, body = client.get("/")
            assert status == 200
            if "connection: close" in headers:
                break
        else:
            pytest.fail("the tenth request was not answered with Connection: close")
        retired_at, old = time.monotonic(), body["workerPID"]
        took = probe_new_connections(fl.port, old)
        # the replacement was started at the retirement, not at the old worker's exit (GRACE later)
        assert max(took) < GRACE / 2, took
        assert old in children_of(fl.pid)  # still held open by the idle client
        gone_within(old, GRACE + 2 * BUSY)
        assert time.monotonic() - retired_at < GRACE + BUSY
        assert client.closed_by_server(2.0)
    finally:
        client.close()
    [start] = [d for d in drain_lines(fl, "drain_started") if d["child"] == old]
    assert start["cause"] == "served WEB_MAX_REQUESTS"
    death = death_of(fl, old)
    assert death["cause"] == "killed by SIGKILL" and GRACE <= death["drained_in"] < GRACE + BUSY, death
    assert len(children_of(fl.pid)) == 1


def test_sighup_replaces_a_worker_held_by_an_idle_client_by_the_deadline(serve):
    fl = serve()
    client = KeepAliveClient(fl.port)
    try:
        status, headers, body = client.get("/")
        old = body["workerPID"]
        assert "connection: close" not in headers
        os.kill(fl.pid, signal.SIGHUP)
        hup_at = time.monotonic()
        wait_until(lambda: [d for d in drain_lines(fl, "drain_started") if d["child"] == old], 5, 0.01,
                   "the old worker draining")
        took = probe_new_connections(fl.port, old)
        assert max(took) < GRACE / 2, took
        # The old connection still works while the old worker drains, and is told to close; its
        # readiness says so, while a new connection reaches the new worker, ready.
        status, headers, body = client.get("/readyz")
        assert status == 503 and body == {"status": "draining", "workerPID": old}, body
        status, _, fresh = request(fl.port, "GET", "/readyz")
        assert status == 200 and fresh["status"] == "ready" and fresh["workerPID"] != old
        status, headers, body = client.get("/")
        assert status == 200 and body["workerPID"] == old and "connection: close" in headers
        gone_within(old, GRACE + 2 * BUSY)
        assert time.monotonic() - hup_at < GRACE + BUSY
        assert client.closed_by_server(2.0)
    finally:
        client.close()
    death = death_of(fl, old)
    assert death["drain"] == "reload (SIGHUP)" and death["cause"] == "killed by SIGKILL", death
    assert len(children_of(fl.pid)) == 1


def test_a_draining_worker_whose_clients_hang_up_exits_at_once(serve):
    """The well-behaved case: the client acts on Connection: close, so the worker ends long before its deadline."""
    fl = serve()
    client = KeepAliveClient(fl.port)
    old = client.get("/")[2]["workerPID"]
    os.kill(fl.pid, signal.SIGHUP)
    wait_until(lambda: [d for d in drain_lines(fl, "drain_started") if d["child"] == old], 5, 0.01,
               "the old worker draining")
    status, headers, _ = client.get("/")
    assert status == 200 and "connection: close" in headers
    client.close()  # as http.client, curl and nginx do on Connection: close
    gone_within(old, GRACE)
    death = death_of(fl, old)
    assert death["cause"] == "exited with status 0" and death["drained_in"] < GRACE / 2, death
