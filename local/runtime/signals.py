"""The signals the supervisor handles, queued by their handlers and taken by its loop.

A handler only enqueues (gunicorn's SimpleQueue): no logging, kill or I/O in signal context.
A forked child puts every one of them back to its default.
"""

import queue
import signal
from types import FrameType

# SIGUSR1 comes from an HTTP worker that is retiring (see local/runtime/slots.py).
HANDLED = ("SIGHUP", "SIGQUIT", "SIGINT", "SIGTERM", "SIGTTIN", "SIGTTOU", "SIGCHLD", "SIGUSR1")


class SignalQueue:
    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[int] = queue.SimpleQueue()

    def install(self) -> None:
        for name in HANDLED:
            signal.signal(getattr(signal, name), self.enqueue)

    def enqueue(self, signum: int, frame: FrameType | None) -> None:
        self.queue.put_nowait(signum)

    def get(self, timeout: float) -> str | None:
        """The next signal's short name ("hup", "term" ...), or None after `timeout` seconds."""
        try:
            return signal.Signals(self.queue.get(timeout=timeout)).name[3:].lower()
        except queue.Empty:
            return None


def reset_in_child() -> None:
    for name in HANDLED:
        signal.signal(getattr(signal, name), signal.SIG_DFL)
