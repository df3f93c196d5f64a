"""Body of one HTTP worker process: build the app after the fork, serve on the shared socket."""

import importlib
import logging
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable

import bjoern

from adapters.logs import setup_logging
from adapters.settings import Settings
from local.exits import RECYCLED

log = logging.getLogger("forkline.web")


class BusyClock:
    """WSGI wrapper writing when the current request started (0 when idle) to a shared slot.

    The supervisor reads the slot: a request older than WEB_TIMEOUT means a
    stuck worker (gunicorn's heartbeat, without a file per worker).
    """

    def __init__(self, app: Callable, slots, index: int):
        self.app, self.slots, self.index = app, slots, index

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        self.slots[self.index] = time.monotonic()
        try:
            return self.app(environ, start_response)
        finally:
            self.slots[self.index] = 0.0


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Retirement:
    """Why this worker is retiring, if it is: the supervisor replaces it at once (exit RECYCLED)."""

    def __init__(self):
        self.reason = ""

    def retire(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
            stop_gracefully()


class RequestLimit:
    """WSGI wrapper that retires the worker after `limit` requests, once the last response is sent.

    As gunicorn's max_requests (+ jitter, so that workers do not all restart at once).
    """

    def __init__(self, app: Callable, limit: int, retirement: Retirement):
        self.app, self.limit, self.retirement = app, limit, retirement
        self.served = 0

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        body = self.app(environ, start_response)
        self.served += 1
        if self.served == self.limit:
            return ThenRetire(body, self.retirement, f"served {self.served} requests (WEB_MAX_REQUESTS)")
        return body


class ThenRetire:
    """A response body that retires the worker once the server has sent it (WSGI calls close())."""

    def __init__(self, body: Iterable[bytes], retirement: Retirement, reason: str):
        self.body, self.retirement, self.reason = body, retirement, reason

    def __iter__(self):
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.retirement.retire(self.reason)


def stop_gracefully(signum: int = 0, frame=None) -> None:
    """bjoern stops on SIGINT after the request in hand; SIGTERM means the same here."""
    os.kill(os.getpid(), signal.SIGINT)


def watch_worker(parent: int, max_rss_mb: int, retirement: Retirement) -> None:
    """Once a second: stop if orphaned (supervisor SIGKILLed); retire past the memory ceiling.

    Memory is checked here, not per request, so that a worker bloated by
    connections that never finish a request (slow bodies) is retired too.
    """
    while os.getppid() == parent:
        if max_rss_mb and (rss := resident_mb()) > max_rss_mb:
            retirement.retire(f"resident memory {rss:.0f} MB over WEB_MAX_RSS_MB={max_rss_mb}")
            return
        time.sleep(1.0)
    log.warning("supervisor %d is gone: stopping", parent, extra={"event": "orphaned"})
    stop_gracefully()


def serve(sock: socket.socket, settings: Settings, slots, index: int, ready_fd: int | None = None) -> None:
    """Run until SIGINT or SIGTERM (finish the request in hand, then return)."""
    setup_logging("web", settings.log_level, settings.log_dir)
    # bjoern turns SIGINT into KeyboardInterrupt; with SIGINT at SIG_DFL it segfaults on stop instead.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop_gracefully)
    module, _, name = settings.app_factory.partition(":")
    app = getattr(importlib.import_module(module), name)(settings)
    retirement = Retirement()
    if settings.web_max_requests:
        jitter = settings.web_max_requests_jitter
        jitter = settings.web_max_requests // 10 if jitter is None else jitter
        app = RequestLimit(app, settings.web_max_requests + random.randint(0, jitter), retirement)
    app = BusyClock(app, slots, index)
    threading.Thread(target=watch_worker, args=(os.getppid(), settings.web_max_rss_mb, retirement),
                     name="worker-watch", daemon=True).start()
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    try:
        bjoern.server_run(sock, app)
    except KeyboardInterrupt:
        pass
    if retirement.reason:
        log.info("retiring: %s", retirement.reason, extra={"event": "worker_recycled"})
        raise SystemExit(RECYCLED)
