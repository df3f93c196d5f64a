"""Requests pipelined in one write (RFC 9112 §9.3.2): through the shipped nginx each gets its answer,
in order, and a POST among them creates its job once; straight to an HTTP worker, bjoern answers
only the last of them and runs none of the others, which is why the docs say to put the shipped
nginx, or any HTTP/1.1 proxy, in front when clients may pipeline."""

import json
import os
import signal
import socket

import pytest

from adapters.redis import keys
from harness.processes import Forkline
from tests.e2e.nginx import NGINX, Nginx

BODY = json.dumps({"message": "pipelined", "shouldFail": False}).encode()
PIPELINE = (b"GET /health HTTP/1.1\r\nHost: forkline\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: forkline\r\n\r\n"
            b"POST /jobs HTTP/1.1\r\nHost: forkline\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY +
            b"GET /queue/stats HTTP/1.1\r\nHost: forkline\r\n\r\n")


@pytest.fixture
def served(tmp_path, redis_url):
    fl = Forkline("serve", tmp_path, {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "1"}).start()
    yield fl
    assert fl.stop(signal.SIGTERM, timeout=30) == 0


def answers(port: int, count: int, timeout: float) -> list[tuple[int, dict]]:
    """Send the pipeline in one write; read up to `count` answers in order (each by its Content-Length),
    until the connection closes or `timeout` passes quietly."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    found: list[tuple[int, dict]] = []
    try:
        sock.sendall(PIPELINE)
        stream = sock.makefile("rb")
        for _ in range(count):
            try:
                status_line = stream.readline()
                if not status_line:
                    break
                headers = {}
                while (line := stream.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = stream.read(int(headers["content-length"]))
            except (TimeoutError, ConnectionResetError):
                break
            found.append((int(status_line.split()[1]), json.loads(body)))
    finally:
        sock.close()
    return found


def test_pipelined_requests_through_the_shipped_nginx_get_every_answer_in_order(served, redis_proc):
    assert os.path.exists(NGINX), "nginx is missing: `make test` installs it (apt-get install -y nginx)"
    nginx = Nginx(served.port).start()
    try:
        got = answers(nginx.port, 4, timeout=10)
    finally:
        nginx.stop()
    assert [status for status, _ in got] == [200, 200, 202, 200], got
    assert got[0][1]["status"] == "ok" and "workerPID" in got[1][1] and got[2][1]["status"] == "queued"
    default = keys.queue_keys("default")
    client = redis_proc.client()
    assert len(list(client.scan_iter(default.job_prefix + "*"))) == 1  # the POST made its job once


def test_pipelined_requests_straight_to_a_worker_get_only_the_last_one_answered(served, redis_proc):
    """bjoern 3.2.2 parses the whole read, keeps only the last request and answers it; the others are
    never run (the POST among them made no job) and never answered: the client waits for them."""
    got = answers(served.port, 4, timeout=3)
    print(f"\nstraight to bjoern, 4 pipelined requests got {[status for status, _ in got]}")
    assert len(got) == 1 and set(got[0][1]) >= {"waiting", "queues"}, got  # GET /queue/stats, the last one
    assert got[0][1]["waiting"] == 0
    default = keys.queue_keys("default")
    assert list(redis_proc.client().scan_iter(default.job_prefix + "*")) == []  # the POST was never run
