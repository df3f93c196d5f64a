"""Body of the job consumer process: one Huey consumer per queue it serves, on the leased storage.

Each queue has its own worker threads (QUEUE_CONCURRENCY, else WORKER_CONCURRENCY), so a
queue full of slow jobs cannot take another queue's threads. One main loop routes the
process's signals to every queue's consumer and stops them all within one grace period.
"""

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable

from huey.consumer import Consumer

from adapters import metrics
from adapters.huey.forkline_huey import ForklineHuey
from adapters.huey.storage import OUTCOME_HOLD, RECONNECT_CAP
from adapters.logs import setup_logging
from adapters.metrics import serve_metrics
from adapters.settings import Settings
from adapters.wiring import build_redis_ports, configure_consumer
from functions.models import WorkerInfo
from functions.periodic import submit_due
from functions.ports import JobQueue, WorkerRegistry

log = logging.getLogger("forkline.consumer")

DLQ_RETRY_FIRST, DLQ_RETRY_CAP = 1.0, 30.0


def renew_leases_forever(hueys: list[ForklineHuey], stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        for huey in hueys:
            try:
                huey.storage.renew_leases()
            except Exception as exc:  # Redis down: the next round tries again
                log.debug("lease renewal failed: %s", exc)


def flush_outcomes_forever(hueys: list[ForklineHuey], stop: threading.Event) -> None:
    """Record outcomes that waited their hold while every thread was busy with claimed work."""
    delay = OUTCOME_HOLD
    while not stop.wait(delay):
        delay = OUTCOME_HOLD
        for huey in hueys:
            try:
                huey.storage.flush_due()
            except Exception as exc:  # Redis down: they are kept (leases too) for a later round trip
                log.debug("recording outcomes failed: %s", exc)
                delay = RECONNECT_CAP  # not 50 attempts a second at an unreachable Redis


def deliver_dead_forever(hueys: list[ForklineHuey], stop: threading.Event) -> None:
    """Put the DLQ entries whose put failed, and record deaths Redis could not take: every
    second while all goes through, backing off to every 30 s while it fails, without limit."""
    delay = DLQ_RETRY_FIRST
    while not stop.wait(delay):
        ok = True
        for huey in hueys:
            assert huey.outbox is not None, "configured before the consumer starts"
            try:
                ok = huey.outbox.retry(postpone=min(delay * 2, DLQ_RETRY_CAP)) and ok
            except Exception as exc:  # Redis down: the next round tries again
                log.debug("DLQ retry round failed: %s", exc)
                ok = False
        delay = DLQ_RETRY_FIRST if ok else min(delay * 2, DLQ_RETRY_CAP)


def beat_forever(registry: WorkerRegistry, stop: threading.Event, settings: Settings,
                 snapshot: Callable[[], tuple[list[str], int]], queues: list[str], concurrency: int,
                 clock: Callable[[], float] = time.time) -> None:
    """Tell GET /workers this consumer is alive, every WORKER_HEARTBEAT seconds, with what
    `snapshot()` says: (ids of the jobs running, jobs done). The entry expires after 3 beats, so a
    consumer that stops beating (killed, host gone) disappears by then."""
    host, pid, started = socket.gethostname(), os.getpid(), clock()
    worker_id = f"{host}:{pid}"
    while True:
        running, done = snapshot()
        info = WorkerInfo(id=worker_id, host=host, pid=pid, startedAt=started, queues=queues,
                          concurrency=concurrency, running=sorted(running), done=done,
                          lastBeat=clock())
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


def submit_periodic_forever(jobs: JobQueue, settings: Settings, stop: threading.Event, interval: float = 0.5,
                            clock: Callable[[], float] = time.time) -> None:
    """Submit each periodic job's due tick (idempotent: whichever consumer is first makes the job)."""
    schedules = settings.periodic_schedules
    done: dict[str, int] = {}
    while schedules and not stop.wait(interval):
        now = clock()
        for schedule in schedules:
            if schedule.tick(now) in (None, done.get(schedule.name)):
                continue  # nothing due, or this tick submitted already by this process
            try:
                found = submit_due(schedule, jobs, now, settings.max_attempts)
            except Exception as exc:  # the job store is down: the next round tries again
                log.debug("periodic submit failed: %s", exc)
                continue
            if found is not None:
                done[schedule.name] = found[0]
                if found[1]:
                    log.info("periodic job %s: tick %d submitted", schedule.name, found[0],
                             extra={"event": "periodic_submitted", "periodic": schedule.name, "tick": found[0]})


def watch_jobs(hueys: list[ForklineHuey], stop: threading.Event, interval: float = 0.5) -> None:
    while not stop.wait(interval):
        for huey in hueys:
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
            log.warning("gave back %d unfinished job(s) to queue %s", released, huey.keys.queue,
                        extra={"event": "jobs_released", "count": released, "queue": huey.keys.queue})


def create_consumer(huey: ForklineHuey, threads: int) -> Consumer:
    consumer = huey.create_consumer(
        workers=threads,
        worker_type="thread",
        periodic=False,
        scheduler_interval=1,
        check_worker_health=True,
        health_check_interval=1,
        shutdown_timeout=None,  # set at shutdown: one grace period shared by every queue (run_all)
        graceful_signal="INT",
        backoff=1.5,
        max_delay=2.0,  # also how soon a resumed queue is claimed from again
    )
    # SIGTERM (docker stop, a process manager) is as graceful as SIGINT.
    # SIGHUP would make Huey re-exec this process's command line: the supervisor owns restarts.
    consumer._signal_actions[signal.SIGTERM] = (False, True)
    consumer._signal_actions.pop(signal.SIGHUP, None)
    return consumer


def signalled(consumers: list[Consumer]) -> Consumer | None:
    """The consumer whose handler took a stop signal: the lead's, or, for a signal that came while a later
    queue's consumer was starting (its own handlers set, the lead's not yet again), that one's."""
    return next((consumer for consumer in consumers if consumer._signum is not None), None)


def run_all(consumers: list[Consumer], grace: float) -> None:
    """Start every queue's consumer and wait for a signal (the first consumer receives them: Huey's
    own handler); then stop them all, together within `grace` seconds (Huey's shutdown_timeout)."""
    for consumer in consumers:
        consumer.start()
    lead = consumers[0]
    lead._set_signal_handlers()  # each start() set its own; the lead's decide for all from here on
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    checked = time.monotonic()
    while (stopped_by := signalled(consumers)) is None:
        lead.stop_flag.wait(0.1)
        if time.monotonic() - checked >= 1.0:
            checked = time.monotonic()
            for consumer in consumers:
                consumer.check_worker_health()
    log.info("received %s: stopping", signal.Signals(stopped_by._signum).name, extra={"event": "consumer_stopping"})
    for consumer in consumers:
        consumer.stop_flag.set()  # no queue claims more while the others finish
    deadline = time.monotonic() + grace
    for consumer in consumers:
        consumer.shutdown_timeout = max(deadline - time.monotonic(), 0.0)
        consumer.stop(graceful=stopped_by._graceful)


def run_consumer(settings: Settings, metrics_port: int = 0) -> None:
    """Run until SIGINT/SIGTERM; jobs still running after the grace period are given back.
    With `metrics_port`, also serve the stack's metrics there (`forkline worker` has no web workers)."""
    setup_logging("consumer", settings.log_level, settings.log_dir)
    ports = build_redis_ports(settings)  # one set for the hooks, the heartbeat and the metrics' queue depths
    hueys = configure_consumer(settings, ports)
    if metrics_port:
        serve_metrics(settings.host, metrics_port, ports.jobs, ports.dlq, ports.workers, ports.clock)
    threads = {huey: settings.concurrency_of(huey.keys.queue) for huey in hueys}
    consumers = [create_consumer(huey, count) for huey, count in threads.items()]
    stop = threading.Event()
    for huey in hueys:
        huey.watchdog.on_stuck = stop_for_stuck_jobs
    threading.Thread(target=renew_leases_forever, args=(hueys, stop, settings.job_lease / 3),
                     name="lease-renewer", daemon=True).start()
    threading.Thread(target=flush_outcomes_forever, args=(hueys, stop), name="outcomes", daemon=True).start()
    threading.Thread(target=watch_jobs, args=(hueys, stop), name="job-watchdog", daemon=True).start()
    threading.Thread(target=deliver_dead_forever, args=(hueys, stop), name="dlq-retry", daemon=True).start()
    threading.Thread(target=stop_when_orphaned, args=(os.getppid(), stop), name="parent-watch", daemon=True).start()
    threading.Thread(target=submit_periodic_forever, args=(ports.jobs, settings, stop, 0.5, ports.clock),
                     name="periodic", daemon=True).start()
    queues = settings.served_queues
    concurrency = sum(settings.concurrency_of(queue) for queue in queues)
    beat = threading.Thread(target=beat_forever, name="heartbeat", args=(
        ports.workers, stop, settings, lambda: snapshot(hueys), queues, concurrency, ports.clock))
    beat.start()
    log.info("consumer started: %s", ", ".join(f"{q} ({settings.concurrency_of(q)} threads)" for q in queues),
             extra={"event": "consumer_started", "concurrency": concurrency, "queues": queues})
    try:
        # Huey gives up a second before the supervisor's SIGKILL, leaving time to give jobs back.
        run_all(consumers, grace=max(settings.graceful_timeout - 1.0, settings.graceful_timeout / 2))
    finally:
        stop.set()
        for huey in hueys:
            give_back(huey)
        metrics.flush_all()  # the counts of its last second
        beat.join(5)


def snapshot(hueys: list[ForklineHuey]) -> tuple[list[str], int]:
    """(ids of the jobs running, jobs done) over every queue of this process."""
    return [job for huey in hueys for job in huey.running_now.copy()], sum(huey.done for huey in hueys)
