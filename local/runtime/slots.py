"""Shared memory between the supervisor and its HTTP workers: one slot per live worker.

Each slot holds two numbers, written without locks (one writer per field at a time):
- `started`: when the worker's current request started (monotonic clock), 0 when idle.
  The worker writes it; the supervisor reads it to find a worker stuck past WEB_TIMEOUT.
- `state`: SERVING, or why the worker is draining. The worker writes RETIRING_* when it
  decides to retire (and wakes the supervisor with SIGUSR1, so that the replacement
  starts at once); the supervisor writes DRAINING when it tells the worker to stop.
  Either way the worker answers every further request with `Connection: close`.

The arrays are created before any fork, so every child sees the same memory.
"""

import multiprocessing
from typing import Any

MAX_SLOTS = 256

SERVING = 0
RETIRING_REQUESTS = 1  # served WEB_MAX_REQUESTS (+ jitter)
RETIRING_MEMORY = 2  # resident memory past WEB_MAX_RSS_MB
DRAINING = 3  # the supervisor told it to stop (reload, scale down, shutdown)

RETIRING = (RETIRING_REQUESTS, RETIRING_MEMORY)
CAUSES = {
    RETIRING_REQUESTS: "served WEB_MAX_REQUESTS",
    RETIRING_MEMORY: "over WEB_MAX_RSS_MB",
    DRAINING: "told to stop",
}


class WorkerSlots:
    def __init__(self, size: int = MAX_SLOTS):
        self.started: Any = multiprocessing.RawArray("d", size)
        self.state: Any = multiprocessing.RawArray("b", size)
        self.size = size

    def claim(self, index: int) -> None:
        """Reset a slot for a new worker (in the supervisor, before the fork: no stale state is seen)."""
        self.started[index] = 0.0
        self.state[index] = SERVING

    def free_index(self, used: set[int]) -> int:
        return next(i for i in range(self.size) if i not in used)
