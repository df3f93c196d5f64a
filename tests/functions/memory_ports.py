"""Simple in-memory ports for unit tests of the pure functions."""

from functions.models import DeadJob, JobRecord


class MemoryQueue:
    def __init__(self):
        self.records: dict[str, JobRecord] = {}
        self.queue: list[str] = []
        self.fail_next = False
        self.held: dict[str, tuple[str, str]] = {}

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
        return None

    def requeue(self, job: JobRecord) -> None:
        self.submit(job)

    def get(self, job_id):
        return self.records.get(job_id)

    def counts(self):
        return {"waiting": len(self.queue), "active": 0, "completed": 0, "failed": 0, "delayed": 0}


class MemoryDLQ:
    def __init__(self, entries=()):
        self.entries = {e.jobId: e for e in entries}

    def put(self, job: DeadJob) -> None:
        self.entries[job.jobId] = job

    def list(self, offset, limit):
        return sorted(self.entries.values(), key=lambda e: e.failedAt)[offset:offset + limit]

    def get(self, job_id):
        return self.entries.get(job_id)

    def take(self, job_id):
        return self.entries.pop(job_id, None)

    def count(self):
        return len(self.entries)


class FixedProbe:
    def __init__(self, **deps):
        self.deps = deps

    def dependencies(self):
        return dict(self.deps)
