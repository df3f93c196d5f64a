"""The supervisor: gunicorn's Arbiter in miniature.

One loop: wait for a queued signal (at most 1 s, less before a drain deadline;
`local/runtime/signals.py`) -> handle_<sig> -> reap -> murder_workers -> manage_workers.
The children it keeps alive, and how each is started, are the roles of
`local/runtime/roles.py`; each is a `Child` (`local/runtime/children.py`); exits: `local/runtime/exits.py`.

Every worker that stops on purpose drains: it is no longer counted as live (its
replacement starts at once), finishes what it has in hand, and is SIGKILLed if
still alive GRACEFUL_TIMEOUT after the drain began. Causes: a retiring HTTP
worker (WEB_MAX_REQUESTS, WEB_MAX_RSS_MB; it says so through its slot and
SIGUSR1), reload (SIGHUP), scale down (SIGTTOU), shutdown (SIGTERM/SIGINT).
"""

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import NoReturn

import bjoern

from adapters import metrics
from adapters.logs import prune_logs
from adapters.settings import Settings
from local.runtime.children import BootBackoff, Child
from local.runtime.embedded import EMBEDDED, EmbeddedFailed
from local.runtime.exits import RECYCLED, Halt, describe_exit
from local.runtime.roles import EMBEDDED_ROLES, ROLES, Boot, wait_ready
from local.runtime.signals import SignalQueue
from local.runtime.slots import CAUSES, DRAINING, MAX_SLOTS, RETIRING, SERVING, WorkerSlots

log = logging.getLogger("forkline.supervisor")


class Arbiter:
    def __init__(self, settings: Settings, web: bool = True, consumer: bool = True, embedded: str | None = None):
        self.settings = settings
        self.embedded = EMBEDDED[embedded]() if embedded else None  # "redis" or "cloud": started first
        self.targets = {  # in start order (the roles' order)
            **{name: int(embedded == name) for name in EMBEDDED_ROLES},
            "web": settings.web_workers if web else 0,
            "consumer": settings.consumers if consumer else 0,
        }
        self.children: dict[int, Child] = {}
        self.popens: dict[int, object] = {}
        self.backoff = BootBackoff()
        self.signals = SignalQueue()
        self.boot = Boot(settings, sock=None, slots=WorkerSlots(), metrics_port=0 if web else settings.metrics_port)
        self.metrics = metrics.PrometheusMetrics()
        self.stopping = False
        self._pruned_at = 0.0

    # Start-up.

    def start(self) -> None:
        self.signals.install()
        if self.embedded is not None:
            self.embedded.prepare(self.boot)
            self.spawn_worker(self.embedded.role)
            try:
                self.settings = self.boot.settings = self.embedded.ready(self.boot)
            except EmbeddedFailed as exc:
                self.halt(str(exc), 1)
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

    # The loop.

    def run(self) -> int:
        try:
            self.start()
            while True:
                self.maybe_prune_logs()
                name = self.signals.get(self.next_wakeup())
                if name is not None:
                    getattr(self, "handle_" + name)()
                self.reap_workers()
                self.murder_workers()
                self.manage_workers()
        except Halt as halt:
            return halt.status

    def next_wakeup(self) -> float:
        """At most 1 s, sooner if a drain deadline falls before."""
        deadlines = [c.deadline for c in self.children.values() if c.deadline and not c.killed]
        return max(0.01, min([1.0] + [d - time.monotonic() for d in deadlines]))

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
            self.drain_worker(child, "reload (SIGHUP)")

    def handle_usr1(self) -> None:
        """An HTTP worker is retiring: count it as gone, so that its replacement starts now."""
        for child in list(self.children.values()):
            state = self.boot.slots.state[child.slot] if child.role == "web" else SERVING
            if state in RETIRING and not child.stopping:
                self.drain_worker(child, CAUSES[state], signal_it=False)

    def handle_ttin(self) -> None:
        self.targets["web"] = min(self.targets["web"] + 1, MAX_SLOTS)
        log.info("HTTP workers: %d", self.targets["web"], extra={"event": "scale"})

    def handle_ttou(self) -> None:
        self.targets["web"] = max(self.targets["web"] - 1, 1)
        log.info("HTTP workers: %d", self.targets["web"], extra={"event": "scale"})

    # Workers.

    def spawn_worker(self, role: str, ready_fd: int | None = None) -> int:
        kind = ROLES[role]
        # A web worker's slot in the shared memory; for the other roles, its number among them (ps titles).
        slot = self.boot.slots.free_index({c.slot for c in self.children.values() if c.role == role})
        if kind.uses_slot:
            self.boot.slots.claim(slot)
        spawned = kind.spawn(self.boot, slot, ready_fd)
        if spawned.popen is not None:
            self.popens[spawned.pid] = spawned.popen
        self.children[spawned.pid] = Child(spawned.pid, role, time.monotonic(), slot)
        log.info("%s worker born (pid %d)", role, spawned.pid,
                 extra={"event": "worker_born", "worker_role": role, "child": spawned.pid})
        return spawned.pid

    def drain_worker(self, child: Child, cause: str, signal_it: bool = True) -> None:
        """Stop counting a worker as live; it finishes what it has in hand and exits, or is
        SIGKILLed at its deadline (GRACEFUL_TIMEOUT from now), whatever keeps it busy."""
        if child.stopping:
            return
        child.begin_drain(cause, self.settings.graceful_timeout)
        if child.role == "web" and self.boot.slots.state[child.slot] == SERVING:
            self.boot.slots.state[child.slot] = DRAINING  # its further responses say Connection: close
        log.info("%s worker %d draining (%s), deadline %.0fs", child.role, child.pid, cause,
                 self.settings.graceful_timeout,
                 extra={"event": "drain_started", "worker_role": child.role, "child": child.pid, "cause": cause})
        if signal_it:
            self.kill_worker(child.pid, signal.SIGINT)

    def kill_worker(self, pid: int, sig: int) -> None:
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
        now = time.monotonic()
        lived = now - child.born
        planned = child.stopping or self.stopping or code == RECYCLED
        drain = {"drain": child.cause, "drained_in": round(now - child.drain_started, 3)} if child.deadline else {}
        metrics.mark_dead(child.pid)
        if not self.stopping:
            self.metrics.worker_restarted(child.role, child.cause or cause)
        log.log(logging.INFO if planned else logging.WARNING, "%s worker died (pid %d): %s after %.1fs%s",
                child.role, child.pid, cause, lived, f", the end of its drain ({child.cause})" if drain else "",
                extra={"event": "worker_died", "worker_role": child.role, "child": child.pid, "cause": cause,
                       **drain})
        if planned:
            return  # a recycled worker is replaced at once, however short its life
        delay = self.backoff.record(child.role, code, lived)
        if delay:
            log.warning("%s worker failed at start; next try in %.1fs", child.role, delay,
                        extra={"event": "boot_backoff", "worker_role": child.role, "delay": delay})

    def murder_workers(self) -> None:
        """SIGKILL draining workers past their deadline, and HTTP workers stuck in one request
        for longer than WEB_TIMEOUT."""
        timeout = self.settings.web_timeout
        now = time.monotonic()
        for child in list(self.children.values()):
            if child.overdue(now):
                log.warning("%s worker %d did not drain within GRACEFUL_TIMEOUT (%s): SIGKILL", child.role,
                            child.pid, child.cause, extra={"event": "drain_deadline", "child": child.pid})
                child.killed = True
                self.kill_worker(child.pid, signal.SIGKILL)
            if child.role != "web" or child.stopping:
                continue
            started = self.boot.slots.started[child.slot]
            if started and now - started > timeout:
                log.error("web worker %d stuck in a request for %.0fs: killing it", child.pid, now - started,
                          extra={"event": "worker_timeout", "child": child.pid})
                self.kill_worker(child.pid, signal.SIGKILL)

    def manage_workers(self) -> None:
        if self.stopping:
            return
        self.handle_usr1()  # a retirement whose signal merged with another's
        now = time.monotonic()
        for role, target in self.targets.items():
            live = [c for c in self.children.values() if c.role == role and not c.stopping]
            if len(live) < target and self.backoff.ready(role, now):
                self.spawn_worker(role)
                # Spawn the rest on the next turns only when the role is healthy.
                if self.backoff.failing(role):
                    continue
                for _ in range(target - len(live) - 1):
                    self.spawn_worker(role)
            elif len(live) > target:
                for child in sorted(live, key=lambda c: c.born)[: len(live) - target]:
                    self.drain_worker(child, "scale down")

    # Stopping.

    def stop(self, graceful: bool = True) -> None:
        """Drain the workers (in-flight work finishes by the drain deadline), then the embedded service."""
        self.stopping = True
        log.info("stopping (%s)", "graceful" if graceful else "quick", extra={"event": "stopping"})
        for child in [c for c in self.children.values() if c.role not in EMBEDDED_ROLES]:
            if graceful:
                self.drain_worker(child, "shutdown")
            else:
                child.stopping = True
                self.kill_worker(child.pid, signal.SIGKILL)
        self.wait_children(lambda c: c.role not in EMBEDDED_ROLES, self.settings.graceful_timeout + 5.0)
        if self.boot.sock is not None:
            self.boot.sock.close()
        for child in list(self.children.values()):
            child.stopping = True
            self.kill_worker(child.pid, signal.SIGTERM)
        self.wait_children(lambda c: True, 10.0)

    def wait_children(self, which: Callable[[Child], bool], timeout: float) -> None:
        """Wait for the selected children to exit, SIGKILLing drainers at their deadline and
        any still alive after `timeout`."""
        for grace, sig in ((timeout, signal.SIGKILL), (5.0, None)):
            deadline = time.monotonic() + grace
            while any(which(c) for c in self.children.values()) and time.monotonic() < deadline:
                time.sleep(0.05)
                self.reap_workers()
                self.murder_workers()
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

