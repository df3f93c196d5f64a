"""Body of one HTTP worker process: build the app after the fork, serve on the shared socket."""

import importlib
import logging
import os
import signal
import socket
import threading
import time
from typing import Callable, Iterable

import bjoern

from adapters.app import AppDeps, create_app
from adapters.auth import parse_keys
from adapters.logs import setup_logging
from adapters.settings import Settings
from adapters.wiring import build_ports

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


def build_wsgi_app(settings: Settings) -> Callable:
    ports = build_ports(settings)
    deps = AppDeps(jobs=ports.jobs, dlq=ports.dlq, probe=ports.probe, max_attempts=settings.max_attempts,
                   api_keys=parse_keys(settings.api_keys))
    return create_app(deps)


def stop_gracefully(signum: int = 0, frame=None) -> None:
    """bjoern stops on SIGINT after the request in hand; SIGTERM means the same here."""
    os.kill(os.getpid(), signal.SIGINT)


def watch_parent(parent: int) -> None:
    """An orphaned worker (its supervisor SIGKILLed) stops instead of serving forever."""
    while os.getppid() == parent:
        time.sleep(1.0)
    log.warning("supervisor %d is gone: stopping", parent, extra={"event": "orphaned"})
    stop_gracefully()


def serve(sock: socket.socket, settings: Settings, slots, index: int, ready_fd: int | None = None) -> None:
    """Run until SIGINT or SIGTERM (finish the request in hand, then return)."""
    setup_logging("web", settings.log_level, settings.log_dir)
    # bjoern turns SIGINT into KeyboardInterrupt; with SIGINT at SIG_DFL it segfaults on stop instead.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop_gracefully)
    threading.Thread(target=watch_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    module, _, name = settings.app_factory.partition(":")
    factory = getattr(importlib.import_module(module), name)
    app = BusyClock(factory(settings), slots, index)
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    try:
        bjoern.server_run(sock, app)
    except KeyboardInterrupt:
        pass
