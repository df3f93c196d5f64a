"""Body of the job consumer process: Huey's consumer on the leased storage."""

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable

from adapters import metrics
from adapters.huey.tasks import ForklineHuey
from adapters.logs import setup_logging
from adapters.metrics import serve_metrics
from adapters.settings import Settings
from adapters.wiring import build_ports, configure_consumer
from functions.models import WorkerInfo
from functions.ports import WorkerRegistry

log = logging.getLogger("forkline.consumer")

DLQ_RETRY_FIRST, DLQ_RETRY_CAP = 1.0, 30.0


def renew_leases_forever(huey: ForklineHuey, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        try:
            huey.storage.renew_leases()
        except Exception as exc:  # Redis down: the next round tries again
            log.debug("lease renewal failed: %s", exc)


def deliver_dead_forever(huey: ForklineHuey, stop: threading.Event) -> None:
    """Put the DLQ entries whose put failed, and record deaths Redis could not take: every
    second while all goes through, backing off to every 30 s while it fails, without limit."""
    delay = DLQ_RETRY_FIRST
    while not stop.wait(delay):
        assert huey.outbox is not None, "configured before the consumer starts"
        try:
            ok = huey.outbox.retry(postpone=min(delay * 2, DLQ_RETRY_CAP))
        except Exception as exc:  # Redis down: the next round tries again
            log.debug("DLQ retry round failed: %s", exc)
            ok = False
        delay = DLQ_RETRY_FIRST if ok else min(delay * 2, DLQ_RETRY_CAP)


def beat_forever(registry: WorkerRegistry, stop: threading.Event, settings: Settings,
                 snapshot: Callable[[], tuple[list[str], int]]) -> None:
    """Tell GET /workers this consumer is alive, every WORKER_HEARTBEAT seconds, with what
    `snapshot()` says: (ids of the jobs running, jobs done). The entry expires after 3 beats, so a
    consumer that stops beating (killed, host gone) disappears by then."""
    host, pid, started = socket.gethostname(), os.getpid(), time.time()
    worker_id = f"{host}:{pid}"
    while True:
        running, done = snapshot()
        info = WorkerInfo(id=worker_id, host=host, pid=pid, startedAt=started, queues=["default"],
                          concurrency=settings.worker_concurrency, running=sorted(running), done=done,
                          lastBeat=time.time())
        try:
            registry.beat(info, ttl=3 * settings.worker_heartbeat)
        except Exception as exc:  # Redis down: the next beat tries again
            log.debug("heartbeat failed: %s", exc)
        if stop.wait(settings.worker_heartbeat):
            break
    try:
        registry.leave(worker_id)
    except Exception:
        pass  # the entry expires on its own


def watch_jobs(huey: ForklineHuey, stop: threading.Event, interval: float = 0.5) -> None:
    while not stop.wait(interval):
        huey.watchdog.check()


def stop_when_orphaned(parent: int, stop: threading.Event) -> None:
    """A supervisor gone (even SIGKILLed) is a SIGTERM: finish the running jobs, give the rest back."""
    while not stop.wait(1.0):
        if os.getppid() != parent:
            log.warning("the supervisor is gone: stopping", extra={"event": "orphaned"})
            os.kill(os.getpid(), signal.SIGTERM)
            return


def stop_for_stuck_jobs(count: int) -> None:
    """A job ignored its JobTimeout (blocked in C code): stop this consumer; the supervisor starts another."""
    log.error("%d job(s) still running past JOB_TIMEOUT and out of reach: stopping this consumer", count,
              extra={"event": "jobs_stuck", "count": count})
    os.kill(os.getpid(), signal.SIGTERM)


def give_back(huey: ForklineHuey) -> None:
    """At exit: record the last completions, and give back every job still held."""
    try:
        huey.storage.flush()
    except Exception:
        log.exception("could not record the last completions; their jobs will run again after their lease")
    try:
        released = huey.storage.release_held()
    except Exception:
        log.exception("could not give back held jobs; their leases will expire and re-queue them")
    else:
        if released:
            log.warning("gave back %d unfinished job(s) to the queue", released,
                        extra={"event": "jobs_released", "count": released})


def run_consumer(settings: Settings, metrics_port: int = 0) -> None:
    """Run until SIGINT/SIGTERM; jobs still running after the grace period are given back.
    With `metrics_port`, also serve the stack's metrics there (`forkline worker` has no web workers)."""
    setup_logging("consumer", settings.log_level, settings.log_dir)
    ports = build_ports(settings)  # one set for the hooks, the heartbeat and the metrics' queue depths
    huey = configure_consumer(settings, ports)
    if metrics_port:
        serve_metrics(settings.host, metrics_port, ports.jobs, ports.dlq)
    consumer = huey.create_consumer(
        workers=settings.worker_concurrency,
        worker_type="thread",
        periodic=False,
        scheduler_interval=1,
        check_worker_health=True,
        health_check_interval=1,
        # Huey gives up a second before the supervisor's SIGKILL, leaving time to give jobs back.
        shutdown_timeout=max(settings.graceful_timeout - 1.0, settings.graceful_timeout / 2),
        graceful_signal="INT",
        backoff=1.5,
        max_delay=2.0,
    )
    # SIGTERM (docker stop, a process manager) is as graceful as SIGINT.
    # SIGHUP would make Huey re-exec this process's command line: the supervisor owns restarts.
    consumer._signal_actions[signal.SIGTERM] = (False, True)
    consumer._signal_actions.pop(signal.SIGHUP, None)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    stop = threading.Event()
    huey.watchdog.on_stuck = stop_for_stuck_jobs
    threading.Thread(target=renew_leases_forever, args=(huey, stop, settings.job_lease / 3),
                     name="lease-renewer", daemon=True).start()
    threading.Thread(target=watch_jobs, args=(huey, stop), name="job-watchdog", daemon=True).start()
    threading.Thread(target=deliver_dead_forever, args=(huey, stop), name="dlq-retry", daemon=True).start()
    threading.Thread(target=stop_when_orphaned, args=(os.getppid(), stop), name="parent-watch", daemon=True).start()
    beat = threading.Thread(target=beat_forever, name="heartbeat", args=(
        ports.workers, stop, settings, lambda: (list(huey.running_now.copy()), huey.done)))
    beat.start()
    log.info("consumer started with %d threads", settings.worker_concurrency,
             extra={"event": "consumer_started", "concurrency": settings.worker_concurrency})
    try:
        consumer.run()
    finally:
        stop.set()
        give_back(huey)
        metrics.flush_all()  # the counts of its last second
        beat.join(5)
