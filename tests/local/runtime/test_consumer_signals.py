"""local/runtime/consumer.py run_all: a stop signal stops every queue's consumer, also one that comes while
the queues' consumers are still starting (each start() sets its own handlers before the lead's are set
again: such a signal once left the process waiting for a signal it had already taken, until SIGKILL)."""

import os
import signal
import threading
import time

from adapters.wiring import configure_consumer
from local.runtime.consumer import create_consumer, run_all


def test_a_sigterm_while_a_later_queue_s_consumer_starts_stops_them_all(settings):
    consumers = [create_consumer(huey, 1) for huey in configure_consumer(settings)]
    assert len(consumers) >= 2
    later = consumers[-1]
    start = later.start

    def start_then_signalled() -> None:
        start()  # its own handlers are set now, the lead's not yet again
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs here, in this (the main) thread

    later.start = start_then_signalled  # type: ignore[method-assign]
    lead = consumers[0]
    rescue = threading.Timer(10, lambda: setattr(lead, "_signum", signal.SIGUSR1))  # ends a hang, and fails below
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    started = time.monotonic()
    rescue.start()
    try:
        run_all(consumers, grace=2.0)
    finally:
        rescue.cancel()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert later._signum == signal.SIGTERM and lead._signum is None  # the later one's handler took it
    assert time.monotonic() - started < 8, "run_all waited for a signal it had already taken"
    assert all(not worker.is_alive() for consumer in consumers for _, worker in consumer.worker_threads)
