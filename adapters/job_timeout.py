"""JOB_TIMEOUT for jobs that run on a thread: Huey's worker threads, the SQS worker's, the Lambda's.

A thread cannot be killed. The watchdog raises JobTimeout inside the job's
thread (PyThreadState_SetAsyncExc); Python delivers it at the job's next
bytecode, so the attempt fails like any other and is retried or dead-lettered.
A job blocked inside C code that ignores it for `grace` more seconds makes the
watchdog call `on_stuck` (the consumer stops: the job's lease is given back and
its next claim counts another attempt).
"""

import ctypes
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class JobTimeout(Exception):
    """The job ran longer than JOB_TIMEOUT."""


def _raise_in_thread(thread_id: int, exc_type: type[BaseException] | None) -> None:
    """Schedule exc_type in another thread; None withdraws one not yet delivered."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc_type) if exc_type else None)


class JobWatchdog:
    def __init__(self, timeout: float, grace: float = 5.0, on_stuck: Callable[[int], None] | None = None,
                 limit_name: str = "JOB_TIMEOUT"):
        self.timeout = timeout
        self.limit_name = limit_name
        self.grace = grace
        self.on_stuck = on_stuck
        self._running: dict[int, list] = {}  # thread id -> [deadline, cut at or None, reported stuck]
        self._lock = threading.Lock()

    @contextmanager
    def limit(self, seconds: float | None = None, name: str | None = None) -> Iterator[None]:
        """Run the block under the timeout (`seconds`, named `name`, else the watchdog's); raises JobTimeout
        if it was cut off."""
        thread_id = threading.get_ident()
        timeout = self.timeout if seconds is None else seconds
        limit_name = self.limit_name if name is None else name
        with self._lock:
            self._running[thread_id] = [time.monotonic() + timeout, None, False]
        try:
            yield
        finally:
            with self._lock:
                _, cut_at, _ = self._running.pop(thread_id)
                if cut_at is not None:
                    # Withdraw it if still pending, so it cannot surface later in Huey's own code.
                    _raise_in_thread(thread_id, None)
            if cut_at is not None:
                raise JobTimeout(f"the job ran longer than {limit_name} ({timeout:g}s)") from None

    def check(self) -> int:
        """Cut off jobs past their deadline; returns how many are newly stuck past the grace period."""
        now = time.monotonic()
        stuck = 0
        with self._lock:
            for thread_id, entry in self._running.items():
                deadline, cut_at, reported = entry
                if cut_at is None and now >= deadline:
                    entry[1] = now
                    _raise_in_thread(thread_id, JobTimeout)
                elif cut_at is not None and not reported and now - cut_at >= self.grace:
                    entry[2] = True
                    stuck += 1
        if stuck and self.on_stuck is not None:
            self.on_stuck(stuck)
        return stuck
