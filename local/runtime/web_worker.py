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

from adapters import metrics
from adapters.http.resources import DRAINING
from adapters.logs import setup_logging
from adapters.settings import Settings
from local.runtime.exits import RECYCLED
from local.runtime.slots import RETIRING_MEMORY, RETIRING_REQUESTS, SERVING, WorkerSlots

log = logging.getLogger("forkline.web")


class BusyClock:
    """WSGI wrapper writing when the current request started (0 when idle) to the worker's slot.

    The supervisor reads it: a request older than WEB_TIMEOUT means a stuck
    worker (gunicorn's heartbeat, without a file per worker).
    """

    def __init__(self, app: Callable, slots: WorkerSlots, index: int):
        self.app, self.started, self.index = app, slots.started, index

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        self.started[self.index] = time.monotonic()
        try:
            return self.app(environ, start_response)
        finally:
            self.started[self.index] = 0.0


class CloseWhenDraining:
    """WSGI wrapper adding `Connection: close` to every response once the worker drains.

    bjoern 3.2.2 keeps a connection open whenever the request allows it and adds its
    own `Connection: Keep-Alive` after the app's headers; but clients and proxies act
    on the app's `close` (nginx drops the upstream connection after that response,
    http.client and curl hang up), and bjoern then sees the hang-up and closes its
    end. Idle pooled connections that send nothing more are closed by the proxy's
    idle timeout, or by the supervisor's SIGKILL at the drain deadline.
    """

    def __init__(self, app: Callable, slots: WorkerSlots, index: int):
        self.app, self.state, self.index = app, slots.state, index

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self.state[self.index] == SERVING:
            return self.app(environ, start_response)
        environ[DRAINING] = True  # GET /readyz answers 503 from now on

        def closing(status: str, headers: list[tuple[str, str]], exc_info=None):
            return start_response(status, [*headers, ("Connection", "close")], exc_info)

        return self.app(environ, closing)


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Retirement:
    """Why this worker is retiring, if it is. Retiring marks the slot, wakes the supervisor
    (SIGUSR1: it starts the replacement at once) and stops accepting; the worker exits
    RECYCLED once its connections are closed, or is SIGKILLed at the drain deadline."""

    def __init__(self, slots: WorkerSlots, index: int, supervisor: int):
        self.slots, self.index, self.supervisor = slots, index, supervisor
        self.reason = ""

    def retire(self, code: int, reason: str) -> None:
        if self.reason or self.slots.state[self.index] != SERVING:
            return
        self.reason = reason
        self.slots.state[self.index] = code
        log.info("retiring: %s", reason, extra={"event": "worker_recycled"})
        try:
            os.kill(self.supervisor, signal.SIGUSR1)
        except ProcessLookupError:
            pass
        stop_gracefully()


class RequestLimit:
    """WSGI wrapper that retires the worker at its `limit`-th request (gunicorn's max_requests
    + jitter, so that workers do not all restart at once). That request is still answered,
    with `Connection: close`."""

    def __init__(self, app: Callable, limit: int, retirement: Retirement):
        self.app, self.limit, self.retirement = app, limit, retirement
        self.served = 0

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        self.served += 1
        if self.served == self.limit:
            self.retirement.retire(RETIRING_REQUESTS, f"served {self.served} requests (WEB_MAX_REQUESTS)")
        return self.app(environ, start_response)


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
            retirement.retire(RETIRING_MEMORY, f"resident memory {rss:.0f} MB over WEB_MAX_RSS_MB={max_rss_mb}")
            return
        time.sleep(1.0)
    log.warning("supervisor %d is gone: stopping", parent, extra={"event": "orphaned"})
    stop_gracefully()


def serve(sock: socket.socket, settings: Settings, slots: WorkerSlots, index: int,
          ready_fd: int | None = None) -> None:
    """Run until SIGINT or SIGTERM: stop accepting, finish the requests in hand, and return
    once every connection is closed (the supervisor SIGKILLs past the drain deadline)."""
    setup_logging("web", settings.log_level, settings.log_dir)
    # bjoern turns SIGINT into KeyboardInterrupt; with SIGINT at SIG_DFL it segfaults on stop instead.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop_gracefully)
    module, _, name = settings.app_factory.partition(":")
    app = getattr(importlib.import_module(module), name)(settings)
    retirement = Retirement(slots, index, os.getppid())
    if settings.web_max_requests:
        jitter = settings.web_max_requests_jitter
        jitter = settings.web_max_requests // 10 if jitter is None else jitter
        app = RequestLimit(app, settings.web_max_requests + random.randint(0, jitter), retirement)
    app = BusyClock(CloseWhenDraining(app, slots, index), slots, index)
    threading.Thread(target=watch_worker, args=(os.getppid(), settings.web_max_rss_mb, retirement),
                     name="worker-watch", daemon=True).start()
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    try:
        bjoern.server_run(sock, app)
    except KeyboardInterrupt:
        pass
    metrics.flush_all()  # the requests of its last second
    if retirement.reason:
        raise SystemExit(RECYCLED)
