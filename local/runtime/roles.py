"""The kinds of child the supervisor keeps alive, in start order; each knows how to start one.

- `redis`: the embedded redis-server (a subprocess, not a fork);
- `web`: one bjoern process on the supervisor's listening socket, with a slot in
  the shared `WorkerSlots` (local/runtime/slots.py);
- `cloud`: with `forkline run --cloud`, the moto server standing in for SQS and DynamoDB (a subprocess);
- `consumer`: the job consumer: Huey on Redis (local/runtime/consumer.py), the SQS worker with
  QUEUE_BACKEND=sqs (local/runtime/sqs_worker.py), or under `--cloud` the jobs function behind its
  emulated SQS trigger (local/cloud_emulation/event_source.py).
"""

import logging
import os
import select
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from setproctitle import setproctitle

from adapters.settings import Settings
from local.runtime import redis_server
from local.runtime.consumer import run_consumer
from local.runtime.exits import BOOT_ERROR
from local.runtime.signals import reset_in_child
from local.runtime.slots import WorkerSlots
from local.runtime.web_worker import serve


@dataclass
class Boot:
    """What the supervisor hands the children it starts."""

    settings: Settings
    sock: socket.socket | None
    slots: WorkerSlots
    redis_port: int = 0
    cloud_port: int = 0  # the embedded moto server of `forkline run --cloud`
    metrics_port: int = 0  # where consumer [0] serves the metrics: `forkline worker` alone, without web workers


@dataclass
class Spawned:
    pid: int
    popen: subprocess.Popen[bytes] | None = None  # kept referenced, or subprocess may reap it behind our back


class Role(Protocol):
    name: str
    uses_slot: bool

    def spawn(self, boot: Boot, slot: int, ready_fd: int | None) -> Spawned:
        """`slot`: a web worker's slot in the shared memory; for the other roles, its number among them."""


def fork_child(role: str, number: int, body: Callable[[], None]) -> int:
    """Fork; the child, titled `forkline: <role> [<number>]` in ps, runs `body()` and exits with
    its status (BOOT_ERROR if it raised)."""
    pid = os.fork()
    if pid:
        return pid
    status = 0
    try:
        setproctitle(f"forkline: {role} [{number}]")
        reset_in_child()
        body()
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        logging.getLogger("forkline." + role).exception("%s worker failed", role)
        status = BOOT_ERROR
    finally:
        logging.shutdown()
        os._exit(status)


class RedisRole:
    name = "redis"
    uses_slot = False

    def spawn(self, boot: Boot, slot: int, ready_fd: int | None) -> Spawned:
        proc = redis_server.start_redis(boot.redis_port, os.path.join(boot.settings.data_dir, "redis"),
                                        title="forkline: redis", with_parent=True,
                                        appendfsync=boot.settings.redis_appendfsync)
        return Spawned(proc.pid, proc)


class CloudRole:
    name = "cloud"
    uses_slot = False

    def spawn(self, boot: Boot, slot: int, ready_fd: int | None) -> Spawned:
        proc = subprocess.Popen([sys.executable, "-m", "local.cloud_emulation.moto_server", str(boot.cloud_port)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return Spawned(proc.pid, proc)


class WebRole:
    name = "web"
    uses_slot = True

    def spawn(self, boot: Boot, slot: int, ready_fd: int | None) -> Spawned:
        def body() -> None:
            assert boot.sock is not None, "the supervisor binds before it starts web workers"
            serve(boot.sock, boot.settings, boot.slots, slot, ready_fd)

        return Spawned(fork_child(self.name, slot, body))


class ConsumerRole:
    name = "consumer"
    uses_slot = False

    def spawn(self, boot: Boot, slot: int, ready_fd: int | None) -> Spawned:
        def body() -> None:
            if boot.sock is not None:
                boot.sock.close()
            settings, metrics_port = boot.settings, boot.metrics_port if slot == 0 else 0
            os.nice(settings.consumer_nice)  # requests first, jobs with what they leave (docs/performance.md)
            if settings.cloud_emulation:
                from local.cloud_emulation.cloud_template import triggers, yaml_load  # needs the `cloud` extra (pyyaml)
                from local.cloud_emulation.event_source import run_event_source

                run_event_source(settings, *triggers(yaml_load()))
            elif settings.queue_backend == "sqs":
                from local.runtime.sqs_worker import run_sqs_worker  # boto3 only where AWS is used

                run_sqs_worker(settings, metrics_port)
            else:
                run_consumer(settings, metrics_port)

        return Spawned(fork_child(self.name, slot, body))


ROLES: dict[str, Role] = {role.name: role for role in (RedisRole(), CloudRole(), WebRole(), ConsumerRole())}
EMBEDDED_ROLES = ("redis", "cloud")  # backing services: stopped last


def wait_ready(fd: int, timeout: float) -> bool:
    """Wait for a new web worker to write b"1" on its readiness pipe (it is serving)."""
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable) and os.read(fd, 1) == b"1"
    finally:
        os.close(fd)
