"""The supervisor: gunicorn's Arbiter in miniature.

One loop: wait for a queued signal (at most 1 s) -> handle_<sig> -> reap ->
murder_workers -> manage_workers. Signal handlers only enqueue the signal.
The children it keeps alive, and how each is started, are the roles of
`local/roles.py`; exit statuses are in `local/exits.py`.
"""

import logging
import multiprocessing
import os
import queue
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import NoReturn

import bjoern

from adapters.logs import prune_logs, setup_logging
from adapters.settings import Settings
from local import redis_server
from local.exits import BOOT_ERROR, RECYCLED, Halt, describe_exit
from local.roles import HANDLED, ROLES, Boot, wait_ready

log = logging.getLogger("forkline.supervisor")

BOOT_WINDOW = 2.0  # a child dying sooner than this counts as a boot failure
MAX_BACKOFF = 30.0
MAX_SLOTS = 256


@dataclass
class Child:
    pid: int
    role: str
    born: float
    slot: int = -1
    stopping: bool = False


class Arbiter:
    def __init__(self, settings: Settings, web: bool = True, consumer: bool = True, embedded_redis: bool = False):
        self.settings = settings
        self.targets = {  # in start order (the roles' order)
            "redis": 1 if embedded_redis else 0,
            "web": settings.web_workers if web else 0,
            "consumer": settings.consumer_processes if consumer else 0,
        }
        self.children: dict[int, Child] = {}
        self.popens: dict[int, object] = {}
        self.failures = {role: 0 for role in self.targets}
        self.not_before = {role: 0.0 for role in self.targets}
        self.sig_queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.boot = Boot(settings, sock=None, slots=multiprocessing.RawArray("d", MAX_SLOTS))
        self.stopping = False
        self._pruned_at = 0.0

    # Start-up.

    def start(self) -> None:
        self.install_signals()
        if self.targets["redis"]:
            self.boot.redis_port = redis_server.free_port()
            self.settings.redis_url = f"redis://127.0.0.1:{self.boot.redis_port}/0"
            self.spawn_worker("redis")
            if not redis_server.wait_for_redis(self.settings.redis_url, timeout=15):
                self.halt("the embedded Redis did not start (see its log under DATA_DIR)", 1)
            log.info("embedded Redis ready at %s", self.settings.redis_url,
                     extra={"event": "redis_ready", "url": self.settings.redis_url})
        if self.targets["web"] and not self.settings.api_key_list:
            log.warning("API_KEYS is empty: /jobs and /dlq are open to anyone who can reach the port",
                        extra={"event": "auth_disabled"})
        if self.targets["web"]:
            self.boot.sock = self.bind()
            log.info("listening on http://%s:%d with %d workers", self.settings.host, self.settings.port,
                     self.targets["web"], extra={"event": "listening"})

    def bind(self) -> socket.socket:
        try:
            sock: socket.socket = bjoern.bind_and_listen(self.settings.host, self.settings.port)
        except OSError as exc:
            self.halt(f"cannot listen on {self.settings.host}:{self.settings.port}: {exc.strerror}", 1)
        return sock

    def install_signals(self) -> None:
        for name in HANDLED:
            signal.signal(getattr(signal, name), self.signal)

    def signal(self, signum: int, frame: FrameType | None) -> None:
        self.sig_queue.put_nowait(signum)

    # The loop.

    def run(self) -> int:
        try:
            self.start()
            while True:
                self.maybe_prune_logs()
                signum = self.wait_signal(1.0)
                if signum is not None:
                    getattr(self, "handle_" + signal.Signals(signum).name[3:].lower())()
                self.reap_workers()
                self.murder_workers()
                self.manage_workers()
        except Halt as halt:
            return halt.status

    def wait_signal(self, timeout: float) -> int | None:
        try:
            return self.sig_queue.get(timeout=timeout)
        except queue.Empty:
            return None

    # Signal handlers (run in the loop, not in signal context).

    def handle_chld(self) -> None:
        self.reap_workers()

    def handle_term(self) -> None:
        self.stop(graceful=True)
        raise Halt(0)

    handle_int = handle_term

    def handle_quit(self) -> None:
        self.stop(graceful=False)
        raise Halt(0)

    def handle_hup(self) -> None:
        """Replace the HTTP workers one by one; the master's socket keeps accepting meanwhile."""
        old = [c for c in self.children.values() if c.role == "web" and not c.stopping]
        log.info("reloading %d HTTP workers", len(old), extra={"event": "reload"})
        for child in old:
            read_fd, write_fd = os.pipe()
            self.spawn_worker("web", ready_fd=write_fd)
            os.close(write_fd)
            if not wait_ready(read_fd, timeout=10.0):
                log.error("a new worker did not come up; reload stopped", extra={"event": "reload_failed"})
                return
            self.kill_worker(child.pid, signal.SIGINT)

    def handle_ttin(self) -> None:
        self.targets["web"] = min(self.targets["web"] + 1, MAX_SLOTS)
        log.info("HTTP workers: %d", self.targets["web"], extra={"event": "scale"})

    def handle_ttou(self) -> None:
        self.targets["web"] = max(self.targets["web"] - 1, 1)
        log.info("HTTP workers: %d", self.targets["web"], extra={"event": "scale"})

    # Workers.

    def spawn_worker(self, role: str, ready_fd: int | None = None) -> int:
        kind = ROLES[role]
        slot = self.free_slot() if kind.uses_slot else -1
        spawned = kind.spawn(self.boot, slot, ready_fd)
        if spawned.popen is not None:
            self.popens[spawned.pid] = spawned.popen
        self.children[spawned.pid] = Child(spawned.pid, role, time.monotonic(), slot)
        log.info("%s worker born (pid %d)", role, spawned.pid,
                 extra={"event": "worker_born", "worker_role": role, "child": spawned.pid})
        return spawned.pid

    def free_slot(self) -> int:
        used = {c.slot for c in self.children.values()}
        return next(i for i in range(MAX_SLOTS) if i not in used)

    def kill_worker(self, pid: int, sig: int) -> None:
        child = self.children.get(pid)
        if child is not None and sig in (signal.SIGINT, signal.SIGTERM):
            child.stopping = True
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def reap_workers(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            self.popens.pop(pid, None)
            if child is not None:
                self.note_death(child, status)

    def note_death(self, child: Child, status: int) -> None:
        """Log a child's death with its cause; a death at start backs its role off."""
        code, cause = describe_exit(status)
        lived = time.monotonic() - child.born
        planned = child.stopping or self.stopping or code == RECYCLED
        log.log(logging.INFO if planned else logging.WARNING, "%s worker died (pid %d): %s after %.1fs",
                child.role, child.pid, cause, lived,
                extra={"event": "worker_died", "worker_role": child.role, "child": child.pid, "cause": cause})
        if planned:
            return  # a recycled worker is replaced at once, however short its life
        if code == BOOT_ERROR or lived < BOOT_WINDOW:
            self.failures[child.role] += 1
            delay = min(0.5 * 2 ** (self.failures[child.role] - 1), MAX_BACKOFF)
            self.not_before[child.role] = time.monotonic() + delay
            log.warning("%s worker failed at start; next try in %.1fs", child.role, delay,
                        extra={"event": "boot_backoff", "worker_role": child.role, "delay": delay})
        else:
            self.failures[child.role] = 0

    def murder_workers(self) -> None:
        """Kill HTTP workers stuck in one request for longer than WEB_TIMEOUT."""
        timeout = self.settings.web_timeout
        now = time.monotonic()
        for child in list(self.children.values()):
            if child.role != "web" or child.stopping:
                continue
            started = self.boot.slots[child.slot]
            if started and now - started > timeout:
                log.error("web worker %d stuck in a request for %.0fs: killing it", child.pid, now - started,
                          extra={"event": "worker_timeout", "child": child.pid})
                self.kill_worker(child.pid, signal.SIGKILL)

    def manage_workers(self) -> None:
        if self.stopping:
            return
        now = time.monotonic()
        for role, target in self.targets.items():
            live = [c for c in self.children.values() if c.role == role and not c.stopping]
            if len(live) < target and now >= self.not_before[role]:
                self.spawn_worker(role)
                # Spawn the rest on the next turns only when the role is healthy.
                if self.failures[role]:
                    continue
                for _ in range(target - len(live) - 1):
                    self.spawn_worker(role)
            elif len(live) > target:
                for child in sorted(live, key=lambda c: c.born)[: len(live) - target]:
                    self.kill_worker(child.pid, signal.SIGINT)

    # Stopping.

    def stop(self, graceful: bool = True) -> None:
        """Stop the workers (in-flight work finishes within the grace period), then Redis."""
        self.stopping = True
        log.info("stopping (%s)", "graceful" if graceful else "quick", extra={"event": "stopping"})
        workers = [c.pid for c in self.children.values() if c.role != "redis"]
        for pid in workers:
            self.kill_worker(pid, signal.SIGINT if graceful else signal.SIGKILL)
        self.wait_children(lambda c: c.role != "redis", self.settings.graceful_timeout if graceful else 5.0)
        if self.boot.sock is not None:
            self.boot.sock.close()
        for child in list(self.children.values()):
            self.kill_worker(child.pid, signal.SIGTERM)
        self.wait_children(lambda c: True, 10.0)

    def wait_children(self, which: Callable[[Child], bool], timeout: float) -> None:
        """Wait for the selected children to exit; SIGKILL those still alive at the deadline."""
        for grace, sig in ((timeout, signal.SIGKILL), (5.0, None)):
            deadline = time.monotonic() + grace
            while any(which(c) for c in self.children.values()) and time.monotonic() < deadline:
                time.sleep(0.05)
                self.reap_workers()
            left = [c for c in self.children.values() if which(c)]
            if not left or sig is None:
                return
            for child in left:
                log.warning("%s worker %d did not stop in time: SIGKILL", child.role, child.pid,
                            extra={"event": "worker_killed", "child": child.pid})
                self.kill_worker(child.pid, sig)

    def halt(self, reason: str, status: int) -> NoReturn:
        log.error("halting: %s", reason, extra={"event": "halt"})
        self.stop(graceful=False)
        raise Halt(status)

    def maybe_prune_logs(self) -> None:
        now = time.monotonic()
        if now - self._pruned_at > 3600:
            self._pruned_at = now
            prune_logs(self.settings.log_dir, self.settings.log_retention_days)


def supervise(settings: Settings, web: bool, consumer: bool, embedded_redis: bool) -> int:
    """Run the supervisor until it stops; its exit status. The code is preloaded (importing
    local.roles imports the worker bodies), never a connection, so a new worker is up at once."""
    setup_logging("supervisor", settings.log_level, settings.log_dir)
    return Arbiter(settings, web=web, consumer=consumer, embedded_redis=embedded_redis).run()
