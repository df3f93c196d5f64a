"""Body of the job consumer process on SQS (`forkline worker` with QUEUE_BACKEND=sqs, JOB_STORE=dynamodb).

One SQSWorker per named queue the process serves (CONSUMER_QUEUES), each with its own
SQS queue, poller and threads. Its poller long-polls the queue (up to 10 messages a call)
whenever fewer messages than the queue's concurrency wait to start, and not while the
queue is paused (checked in the job table every PAUSE_CHECK seconds); its threads
run them through the same SQSJobRunner as the Lambda handler (outcomes recorded
in the job table, retries by visibility timeout, the DLQ with error and
traceback). A keeper thread extends the visibility of every message held here
(running or waiting) when half the queue's visibility timeout has passed since
its last extension, so a long job is not delivered twice.

SIGTERM/SIGINT: stop polling, make the messages not yet started visible again at
once, and let running jobs finish; the supervisor SIGKILLs past GRACEFUL_TIMEOUT
(the killed job's message returns after its visibility timeout, its attempt counted).
"""

import logging
import os
import queue
import signal
import threading
import time
from typing import Any

from adapters import metrics
from adapters.aws.client import AWS_ERRORS
from adapters.aws.job_runner import SQSJobRunner
from adapters.aws.jobs import SQSJobQueue
from adapters.logs import setup_logging
from adapters.metrics import PrometheusMetrics, serve_metrics
from adapters.settings import Settings
from adapters.wiring import build_cloud_ports, build_job_runner
from local.runtime.consumer import beat_forever, submit_periodic_forever

log = logging.getLogger("forkline.consumer")
POLL_WAIT = 5  # seconds of long polling: also how soon an idle worker notices SIGTERM
PAUSE_CHECK = 2.0  # seconds between reads of a queue's paused flag


class SQSWorker:
    """One named queue's poller and threads in this process."""

    def __init__(self, settings: Settings, jobs: SQSJobQueue, name: str, visibility: int, runner: SQSJobRunner):
        self.settings, self.jobs, self.name = settings, jobs, name
        self.queue_url = jobs.urls[name]
        self.concurrency = settings.concurrency_of(name)
        self.visibility = visibility
        self.runner = runner
        self.waiting: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.held: dict[str, float] = {}  # receipt handle -> when its visibility was last set
        self.held_lock = threading.Lock()
        self.stopping = threading.Event()  # no more polling
        self.finished = threading.Event()  # every job thread done: nothing held any more
        self.stop_requested = False  # set by the signal handler (a flag: an Event's lock is not reentrant)
        self._paused, self._paused_read = False, float("-inf")

    def paused(self) -> bool:
        if time.monotonic() - self._paused_read >= PAUSE_CHECK:
            try:
                self._paused = self.jobs.paused(self.name)
            except Exception as exc:  # the table unreachable: keep the last answer
                log.warning("could not read whether %s is paused: %s", self.name, exc)
            self._paused_read = time.monotonic()
        return self._paused

    def poll(self) -> None:
        """Receive while there is room and the queue is not paused; returns when stopping."""
        parent = os.getppid()
        while not self.stop_requested and os.getppid() == parent:  # a supervisor gone is a stop
            if self.waiting.qsize() >= self.concurrency or self.paused():
                time.sleep(0.05 if not self._paused else 0.5)
                continue
            try:
                messages = self.jobs.sqs.client.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=POLL_WAIT,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
            except AWS_ERRORS as exc:
                log.warning("receive failed: %s", exc, extra={"event": "sqs_receive_failed"})
                time.sleep(1.0)
                continue
            with self.held_lock:
                for message in messages:
                    self.held[message["ReceiptHandle"]] = time.monotonic()
            for message in messages:
                self.waiting.put(message)

    def work(self) -> None:
        while True:
            message = self.waiting.get()
            if message is None:
                return
            try:
                self.runner.run_message(message, self.queue_url)
            finally:
                with self.held_lock:
                    self.held.pop(message["ReceiptHandle"], None)

    def keep_invisible(self) -> None:
        """Until the last job thread ends: jobs still running after SIGTERM keep their messages too."""
        while not self.finished.wait(1.0):
            now = time.monotonic()
            with self.held_lock:
                due = [r for r, at in self.held.items() if now - at >= self.visibility / 2]
                for receipt in due:
                    self.held[receipt] = now
            for receipt in due:
                self.runner.set_visibility(self.queue_url, receipt, self.visibility)

    def hand_back_waiting(self) -> int:
        """Make every message not started visible again at once; how many."""
        handed = 0
        while True:
            try:
                message = self.waiting.get_nowait()
            except queue.Empty:
                return handed
            if message is None:
                continue
            self.runner.set_visibility(self.queue_url, message["ReceiptHandle"], 0)
            with self.held_lock:
                self.held.pop(message["ReceiptHandle"], None)
            handed += 1

    def run(self) -> None:
        threads = [threading.Thread(target=self.work, name=f"{self.name}-{n}") for n in range(self.concurrency)]
        keeper = threading.Thread(target=self.keep_invisible, name=f"{self.name}-visibility", daemon=True)
        for thread in [*threads, keeper]:
            thread.start()
        try:
            self.poll()
        finally:
            self.stopping.set()
            handed = self.hand_back_waiting()
            if handed:
                log.warning("gave back %d unstarted job(s) to queue %s", handed, self.name,
                            extra={"event": "jobs_released", "count": handed, "queue": self.name})
            for _ in threads:
                self.waiting.put(None)
            for thread in threads:
                thread.join()
            self.finished.set()


def run_sqs_worker(settings: Settings, metrics_port: int = 0) -> None:
    """Run until SIGINT/SIGTERM (the supervisor SIGKILLs what still runs after GRACEFUL_TIMEOUT)."""
    setup_logging("consumer", settings.log_level, settings.log_dir)
    ports = build_cloud_ports(settings)
    jobs = ports.jobs
    runner = build_job_runner(settings, ports, PrometheusMetrics(), delete_finished=True)
    workers = []
    for name in settings.served_queues:
        attrs = jobs.sqs.client.get_queue_attributes(QueueUrl=jobs.urls[name],
                                                     AttributeNames=["VisibilityTimeout"])["Attributes"]
        workers.append(SQSWorker(settings, jobs, name, int(attrs["VisibilityTimeout"]), runner))
    if metrics_port:
        serve_metrics(settings.host, metrics_port, jobs, ports.dlq, ports.workers, ports.clock)

    def stop(signum: int, frame: Any) -> None:
        for worker in workers:
            worker.stop_requested = True  # each poll returns within POLL_WAIT

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor owns restarts
    stopping = threading.Event()
    concurrency = sum(worker.concurrency for worker in workers)
    beat = threading.Thread(target=beat_forever, name="heartbeat", args=(
        ports.workers, stopping, settings, lambda: (list(runner.running.copy()), runner.done),
        settings.served_queues, concurrency))
    pollers = [threading.Thread(target=worker.run, name=f"{worker.name}-poller") for worker in workers[1:]]
    threading.Thread(target=submit_periodic_forever, args=(jobs, settings, stopping), name="periodic",
                     daemon=True).start()
    for thread in [beat, *pollers]:
        thread.start()
    log.info("SQS worker started: %s", ", ".join(f"{w.name} ({w.concurrency} threads)" for w in workers),
             extra={"event": "consumer_started", "concurrency": concurrency, "queues": settings.served_queues})
    try:
        workers[0].run()  # in the main thread, where the signal handler runs between its receives
    finally:
        for worker in workers:
            worker.stop_requested = True
        for thread in pollers:
            thread.join()
        stopping.set()
        beat.join()
        metrics.flush_all()
