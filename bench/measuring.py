"""What the benchmark scripts share: a throwaway Redis from the shared harness, and memory sampling.

The scripts put the project's root on sys.path before importing this (it uses local.*).
"""

import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from local.commands.bench import descendants, smaps_mb
from local.runtime.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("BENCH_DIR", ROOT.parent / "shared" / "bench"))


@contextmanager
def throwaway_redis(tmp: Path) -> Iterator[int]:
    """A redis-server without persistence on a free loopback port (../shared/bench/redis.sh, its
    state under `tmp`); yields the port, stops it by its pid at exit."""
    port = free_port()
    env = {**os.environ, "BENCH_STATE_DIR": str(tmp)}
    subprocess.run([str(BENCH / "redis.sh"), "start", str(port), str(tmp / "redis")], env=env, check=True,
                   timeout=30, stdout=subprocess.DEVNULL)
    try:
        yield port
    finally:
        subprocess.run([str(BENCH / "redis.sh"), "stop", str(port)], env=env, timeout=30, stdout=subprocess.DEVNULL)


class MemorySampler(threading.Thread):
    """RSS and PSS totals (MB) of the given process trees every `interval` s, the highest kept in
    `peak`; `idle` is set by mark_idle(). Stop it with `done.set()`."""

    def __init__(self, pids: list[int], interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pids, self.interval = pids, interval
        self.peak, self.idle = (0.0, 0.0), (0.0, 0.0)
        self.done = threading.Event()

    def total(self) -> tuple[float, float]:
        rss = pss = 0.0
        for root in self.pids:
            for pid in descendants(root):
                try:
                    r, p = smaps_mb(pid)
                except OSError:
                    continue
                rss, pss = rss + r, pss + p
        return rss, pss

    def mark_idle(self) -> None:
        self.idle = self.total()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            now = self.total()
            self.peak = (max(self.peak[0], now[0]), max(self.peak[1], now[1]))
