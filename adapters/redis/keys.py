"""Redis key names, in one place.

Every key of a named queue carries the queue's hash tag `{forkline:<queue>}`, so each
script touches one Redis Cluster slot. The job id says its queue (`<queue>.<uuid>`,
functions/jobs.py), so a job's keys follow from its id alone. `LEGACY` is the layout of
forkline before named queues (message format 1, one queue): a consumer of the `default`
queue keeps draining it, so jobs enqueued by old processes during a rolling deploy still run.
"""

from dataclasses import dataclass
from functools import cache

from functions.jobs import DEFAULT_PRIORITY, DEFAULT_QUEUE, queue_of

# The heartbeats share one hash tag: a beat writes both keys in one transaction (also in a cluster).
WORKERS = "{forkline:workers}"  # worker id -> last beat
WORKER_PREFIX = "{forkline:workers}:"  # one key per live worker, with an expiry


@dataclass(frozen=True)
class QueueKeys:
    queue: str  # the queue's name (the legacy layout belongs to `default`)
    list: str  # messages waiting, consumed from the right
    schedule: str  # retries waiting for their time (Huey's schedule)
    leases: str  # claimed messages by lease deadline
    stats: str  # counters of finished jobs
    job_prefix: str  # + job id: the job's record
    dlq_entries: str
    dlq_order: str
    dlq_pending: str  # dead jobs whose DLQ put is not confirmed yet
    idempotency_prefix: str
    paused: str  # exists while the queue is paused
    format: int  # the newest message format its producers write (adapters/redis/framing.py)

    @property
    def priorities(self) -> str:
        """The set of priorities other than the default whose lists may hold messages."""
        return self.list + ":priorities"

    def priority_list(self, priority: int) -> str:
        """The list of a priority's messages: the queue list itself for the default (5)."""
        return self.list if priority == DEFAULT_PRIORITY else f"{self.list}:p{priority}"

    def job(self, job_id: str) -> str:
        return self.job_prefix + job_id

    def idempotency(self, key: str) -> str:
        return self.idempotency_prefix + key


@cache  # every call of a route finds its job's keys from its id: built once per queue
def queue_keys(queue: str) -> QueueKeys:
    tag = "{forkline:" + queue + "}"
    return QueueKeys(queue=queue, list=f"{tag}:queue", schedule=f"{tag}:schedule", leases=f"{tag}:leases",
                     stats=f"{tag}:stats", job_prefix=f"{tag}:job:", dlq_entries=f"{tag}:dlq",
                     dlq_order=f"{tag}:dlq:order", dlq_pending=f"{tag}:dlq:pending", idempotency_prefix=f"{tag}:idem:",
                     paused=f"{tag}:paused", format=3)


LEGACY = QueueKeys(queue=DEFAULT_QUEUE, list="huey.redis.forkline", schedule="huey.schedule.forkline",
                   leases="forkline:leases", stats="forkline:stats", job_prefix="forkline:job:",
                   dlq_entries="forkline:dlq", dlq_order="forkline:dlq:order", dlq_pending="forkline:dlq:pending",
                   idempotency_prefix="forkline:idem:", paused="forkline:paused", format=1)


def keys_of(job_id: str) -> QueueKeys:
    """The keys of a job's queue, from its id (an id without a queue is from before named queues)."""
    queue = queue_of(job_id)
    return LEGACY if queue is None else queue_keys(queue)


def job_key(job_id: str) -> str:
    return keys_of(job_id).job(job_id)


def worker_key(worker_id: str) -> str:
    return WORKER_PREFIX + worker_id
