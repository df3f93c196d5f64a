"""The gauges read at each scrape of /metrics, from the ports (either pairing): the queues' depths,
the age of each queue's oldest waiting job and the live consumers serving each queue.

Nothing here is stored between scrapes: a gauge says what the job store and the heartbeats say now.
A store that cannot be read makes `forkline_queue_up` 0 and leaves the queue gauges out (an alert
on them then waits for the store, not for a stale value).
"""

import logging
from collections.abc import Callable, Iterable
from typing import Any

from functions import routes
from functions.jobs import declared_queues
from functions.ports import DeadLetterQueue, JobQueue, WorkerRegistry

log = logging.getLogger("forkline.metrics")


class QueueGauges:
    """A prometheus_client collector over the JobQueue, DLQ and WorkerRegistry ports; `clock`: the
    job store's (Redis's, or the wall clock in the cloud), for the oldest job's age."""

    def __init__(self, jobs: JobQueue, dlq: DeadLetterQueue, workers: WorkerRegistry | None = None,
                 clock: Callable[[], float] | None = None):
        self.jobs, self.dlq, self.workers, self.clock = jobs, dlq, workers, clock

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("forkline_queue_up", "1 when the queue's counts could be read at this scrape")
        try:
            stats = routes.queue_stats(self.jobs, self.dlq)
        except Exception as exc:  # the job store is down: say so, and leave the depths out
            log.debug("queue depths not read: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("forkline_queue_jobs", "Jobs in each named queue by state, read at scrape time",
                                  labels=["queue", "state"])
        paused = GaugeMetricFamily("forkline_queue_paused", "1 while the queue is paused", labels=["queue"])
        for name, figures in stats.queues.items():
            for state in ("waiting", "active", "delayed"):
                depth.add_metric([name, state], getattr(figures, state))
            paused.add_metric([name], int(figures.paused))
        if stats.queues and all(figures.dlq is not None for figures in stats.queues.values()):
            for name, figures in stats.queues.items():
                depth.add_metric([name, "dlq"], figures.dlq or 0)
        else:  # one DLQ for every queue (the SQS DLQ): its entries are counted without a queue
            depth.add_metric(["", "dlq"], stats.dlq)
        yield depth
        yield paused
        yield from self._oldest()
        yield from self._consumers()

    def _oldest(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        if self.clock is None:
            return
        try:
            now = self.clock()
            ready = self.jobs.oldest_waiting(now)
        except Exception as exc:
            log.debug("oldest waiting jobs not read: %s", exc)
            return
        oldest = GaugeMetricFamily("forkline_queue_oldest_waiting_seconds", "Seconds the queue's oldest waiting job "
                                   "has been claimable (0: none waits), read at scrape time", labels=["queue"])
        for name in declared_queues():
            oldest.add_metric([name], max(0.0, now - ready[name]) if name in ready else 0.0)
        yield oldest

    def _consumers(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        if self.workers is None:
            return
        try:
            live = self.workers.list()
        except Exception as exc:
            log.debug("consumers not read: %s", exc)
            return
        consumers = GaugeMetricFamily("forkline_queue_consumers", "Live consumer processes serving the queue, from "
                                      "their heartbeats (Lambda invocations are not counted)", labels=["queue"])
        for name in declared_queues():
            consumers.add_metric([name], sum(name in worker.queues for worker in live))
        yield consumers
