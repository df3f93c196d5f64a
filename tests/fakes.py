"""In-memory ports: for the pure functions' tests and the fast layer of HTTP app tests.

They keep the ports' contracts (an idempotency key held once, `take` removes),
so a test over them checks the app's behaviour, not a stub's answers.
"""

import itertools

from adapters.http.app import AppDeps
from functions.errors import NotAcknowledged
from functions.jobs import declared_queues
from functions.models import CANCELLABLE, FORGETTABLE, PROMOTABLE, DeadJob, JobRecord, JobState


class MemoryQueue:
    def __init__(self):
        self.records: dict[str, JobRecord] = {}
        self.queue: list[str] = []
        self.fail_next = False
        self.unacknowledged = False  # writes, then raises NotAcknowledged (as with a replica stopped)
        self.held: dict[str, tuple[str, str]] = {}
        self.paused: set[str] = set()

    def submit(self, job: JobRecord, once=None):
        if self.fail_next:
            raise RuntimeError("queue down")
        if once is not None:
            key, fingerprint = once
            if key in self.held:
                return self.held[key]
            self.held[key] = (job.id, fingerprint)
        self.records[job.id] = job
        self.queue.append(job.id)
        if self.unacknowledged:
            raise NotAcknowledged(1, 0, 100)
        return None

    def requeue(self, job: JobRecord) -> None:
        self.submit(job)

    def get(self, job_id):
        return self.records.get(job_id)

    def forget(self, job_id):
        job = self.records.get(job_id)
        if job is not None and job.state in FORGETTABLE:
            del self.records[job_id]
        return job.state if job else None

    def cancel(self, job_id, now):
        job = self.records.get(job_id)
        if job is None:
            return None
        if job.state in CANCELLABLE:
            self.records[job_id] = job.model_copy(update={"state": JobState.cancelled, "finishedAt": now})
        return job.state

    def oldest_waiting(self, now):
        found = {}
        for job_id in self.queue:
            job = self.records[job_id]
            if job.state == JobState.queued:
                found[job.queue] = min(found.get(job.queue, now), job.ready_at())
        return found

    def promote(self, job_id, now):
        job = self.records.get(job_id)
        if job is None:
            return None, False
        if job.state in PROMOTABLE:
            self.records[job_id] = job.model_copy(update={"state": JobState.queued, "updatedAt": now, "runAt": None,
                                                          "nextAttemptAt": None, "promotions": job.promotions + 1})
        return job.state, job.state in PROMOTABLE

    def counts(self):
        return {name: {"waiting": sum(self.records[i].queue == name for i in self.queue), "active": 0, "completed": 0,
                       "failed": 0, "delayed": 0, "paused": int(name in self.paused)} for name in declared_queues()}

    def pause(self, queue, paused):
        (self.paused.add if paused else self.paused.discard)(queue)


class MemoryDLQ:
    def __init__(self, entries=()):
        self.entries = {e.jobId: e for e in entries}

    def put(self, job: DeadJob) -> None:
        self.entries[job.jobId] = job

    def list(self, offset, limit):
        return sorted(self.entries.values(), key=lambda e: e.failedAt)[offset:offset + limit]

    def get(self, job_id):
        return self.entries.get(job_id)

    def take_many(self, job_ids):
        return [self.entries.pop(i) for i in job_ids if i in self.entries]

    def matching(self, where):
        return [e for e in self.list(0, len(self.entries)) if where.matches(e)], True

    def count(self):
        return len(self.entries)

    def count_by_queue(self):
        found = {}
        for entry in self.entries.values():
            found[entry.queue] = found.get(entry.queue, 0) + 1
        return found


class FixedProbe:
    def __init__(self, **deps):
        self.deps = deps

    def dependencies(self):
        return dict(self.deps)


def fake_deps(jobs=None, dlq=None, probe=None, api_keys=(), max_attempts=4) -> AppDeps:
    """AppDeps over in-memory ports, a fixed clock, counting ids and a fixed pid."""
    ids = itertools.count(1)
    return AppDeps(jobs=jobs or MemoryQueue(), dlq=dlq or MemoryDLQ(), probe=probe or FixedProbe(memory=True),
                   max_attempts=max_attempts, clock=lambda: 1_700_000_000.0, new_id=lambda: f"job{next(ids)}",
                   pid=lambda: 4242, uptime_clock=lambda: 1_700_000_000.0, started_at=1_699_999_990.0,
                   api_keys=api_keys)


class MemoryWorkers:
    """Heartbeats kept in memory on a clock the test moves: an entry lives `ttl` seconds after its beat."""

    def __init__(self, clock):
        self.clock = clock
        self.entries = {}

    def beat(self, worker, ttl):
        self.entries[worker.id] = (worker, self.clock() + ttl)

    def leave(self, worker_id):
        self.entries.pop(worker_id, None)

    def list(self):
        now = self.clock()
        live = [worker for worker, expires in self.entries.values() if expires > now]
        return sorted(live, key=lambda w: (w.startedAt, w.id))
