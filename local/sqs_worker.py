"""Body of the job consumer process on SQS (`forkline worker` with QUEUE_BACKEND=sqs, JOB_STORE=dynamodb).

The main thread long-polls the jobs queue (up to 10 messages a call) whenever
fewer messages than WORKER_CONCURRENCY wait to start; WORKER_CONCURRENCY threads
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
from adapters.wiring import Ports, build_ports
from local.consumer import beat_forever

log = logging.getLogger("forkline.consumer")
POLL_WAIT = 5  # seconds of long polling: also how soon an idle worker notices SIGTERM


class SQSWorker:
    def __init__(self, settings: Settings, ports: Ports, jobs: SQSJobQueue, visibility: int):
        self.settings, self.ports, self.jobs = settings, ports, jobs
        self.visibility = visibility
        self.runner = SQSJobRunner(jobs, ports.dlq, settings.job_timeout, settings.job_backoff_base,
                                   settings.job_backoff_max, settings.job_backoff_jitter, PrometheusMetrics(),
                                   delete_finished=True)
        self.waiting: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.held: dict[str, float] = {}  # receipt handle -> when its visibility was last set
        self.held_lock = threading.Lock()
        self.stopping = threading.Event()  # no more polling
        self.finished = threading.Event()  # every job thread done: nothing held any more
        self.stop_requested = False  # set by the signal handler (a flag: an Event's lock is not reentrant)

    def poll(self) -> None:
        """Receive while there is room; returns when stopping."""
        concurrency, parent = self.settings.worker_concurrency, os.getppid()
        while not self.stop_requested and os.getppid() == parent:  # a supervisor gone is a stop
            if self.waiting.qsize() >= concurrency:
                time.sleep(0.05)
                continue
            try:
                messages = self.jobs.sqs.client.receive_message(
                    QueueUrl=self.jobs.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=POLL_WAIT,
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
                self.runner.run_message(message)
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
                self.runner.set_visibility(receipt, self.visibility)

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
            self.runner.set_visibility(message["ReceiptHandle"], 0)
            with self.held_lock:
                self.held.pop(message["ReceiptHandle"], None)
            handed += 1

    def run(self) -> None:
        threads = [threading.Thread(target=self.work, name=f"job-{n}") for n in range(self.settings.worker_concurrency)]
        helpers = [threading.Thread(target=self.keep_invisible, name="visibility", daemon=True),
                   threading.Thread(target=beat_forever, name="heartbeat", args=(
                       self.ports.workers, self.stopping, self.settings,
                       lambda: (list(self.runner.running.copy()), self.runner.done)))]
        for thread in threads + helpers:
            thread.start()
        log.info("SQS worker started with %d threads on %s", self.settings.worker_concurrency, self.jobs.queue_url,
                 extra={"event": "consumer_started", "concurrency": self.settings.worker_concurrency})
        try:
            self.poll()
        finally:
            self.stopping.set()
            handed = self.hand_back_waiting()
            if handed:
                log.warning("gave back %d unstarted job(s) to the queue", handed,
                            extra={"event": "jobs_released", "count": handed})
            for _ in threads:
                self.waiting.put(None)
            for thread in threads + helpers[1:]:
                thread.join()
            self.finished.set()
            metrics.flush_all()


def run_sqs_worker(settings: Settings, metrics_port: int = 0) -> None:
    """Run until SIGINT/SIGTERM (the supervisor SIGKILLs what still runs after GRACEFUL_TIMEOUT)."""
    setup_logging("consumer", settings.log_level, settings.log_dir)
    ports = build_ports(settings)
    if not isinstance(ports.jobs, SQSJobQueue):
        raise ValueError("the SQS worker needs QUEUE_BACKEND=sqs with JOB_STORE=dynamodb")
    attrs = ports.jobs.sqs.client.get_queue_attributes(QueueUrl=ports.jobs.queue_url,
                                                       AttributeNames=["VisibilityTimeout"])["Attributes"]
    worker = SQSWorker(settings, ports, ports.jobs, int(attrs["VisibilityTimeout"]))
    if metrics_port:
        serve_metrics(settings.host, metrics_port, ports.jobs, ports.dlq)

    def stop(signum: int, frame: Any) -> None:
        worker.stop_requested = True  # the poll returns within POLL_WAIT

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor owns restarts
    worker.run()
