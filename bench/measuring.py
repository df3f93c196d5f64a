"""What the benchmark scripts share: a throwaway Redis from the shared harness, memory sampling, the
POST /jobs wrk run, and the rounds of set-ups in alternating order.

The scripts put the project's root on sys.path before importing this (it uses local.*).
"""

import argparse
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from local.commands.bench import descendants, smaps_mb
from local.runtime.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("BENCH_DIR", ROOT.parent / "shared" / "bench"))


def rounds_and_duration(description: str, duration: int = 8) -> argparse.Namespace:
    """--rounds (3) and --duration (seconds per wrk run)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=duration)
    return parser.parse_args()


def alternating(setups: list[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, set-up) in turn, the order reversed in even rounds, so that a drift of the machine
    during a sitting falls on every set-up alike."""
    for n in range(rounds):
        for name in (setups if n % 2 == 0 else list(reversed(setups))):
            yield n + 1, name


def post_jobs_run(port: int, duration: int, warmup: int = 2) -> dict:
    """The shared harness's POST /jobs wrk run (http.sh: 64 connections), its JSON line."""
    out = subprocess.run([str(BENCH / "http.sh"), f"http://127.0.0.1:{port}", str(duration), "64"],
                         env={**os.environ, "SCENARIOS": "jobs", "WARMUP_S": str(warmup)}, capture_output=True,
                         text=True, timeout=4 * duration + 120, check=True)
    [line] = [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{"scenario"')]
    return line


def post_jobs_with_cpu(port: int, duration: int, pids: Callable[[], list[int]]) -> dict:
    """post_jobs_run after a 2 s warm-up, with `cpu_us_per_request`: the CPU of the processes `pids()`
    names over the measured run, divided by the requests wrk counted (the one definition of it)."""
    post_jobs_run(port, 2, warmup=0)  # the warm-up, outside the CPU count
    measured = pids()
    before = cpu_seconds(measured)
    line = post_jobs_run(port, duration, warmup=0)
    line["cpu_us_per_request"] = round((cpu_seconds(measured) - before) / max(1, line["requests"]) * 1e6, 1)
    line["processes"] = len(measured)
    return line


def cpu_seconds(pids: list[int]) -> float:
    """The CPU the processes have used (utime + stime, /proc/<pid>/stat); a process gone counts nothing."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat
    return total / os.sysconf("SC_CLK_TCK")


def calibration(seconds: float = 0.5) -> float:
    """A fixed CPU task (pure Python arithmetic, one thread) run for about `seconds`: millions of loop
    steps per second. What the machine gives one core right now; a neighbour taking the CPU lowers it."""
    steps, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        total = 0
        for i in range(100_000):
            total += i * i
        steps += 100_000
    return round(steps / elapsed / 1e6, 2)


def noisy_rounds(calibrations: dict[int, float], tolerance: float = 0.15) -> set[int]:
    """The rounds whose calibration is more than `tolerance` below the sitting's best."""
    best = max(calibrations.values(), default=0.0)
    return {n for n, value in calibrations.items() if value < best * (1 - tolerance)}


def titled(pids: list[int], prefix: str) -> list[int]:
    """The processes whose title (/proc/<pid>/cmdline) starts with `prefix` ("forkline: web", ...)."""
    found = []
    for pid in pids:
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith(prefix):
            found.append(pid)
    return found


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
