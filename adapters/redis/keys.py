"""Redis key names, in one place. Huey's own keys follow its naming."""

QUEUE = "huey.redis.forkline"
SCHEDULE = "huey.schedule.forkline"
LEASES = "forkline:leases"
STATS = "forkline:stats"
JOB_PREFIX = "forkline:job:"
DLQ_ENTRIES = "forkline:dlq"
DLQ_ORDER = "forkline:dlq:order"
DLQ_PENDING = "forkline:dlq:pending"  # dead jobs whose DLQ put is not confirmed yet
IDEMPOTENCY_PREFIX = "forkline:idem:"
WORKERS = "forkline:workers"  # worker id -> last beat
WORKER_PREFIX = "forkline:worker:"  # one key per live worker, with an expiry


def job_key(job_id: str) -> str:
    return JOB_PREFIX + job_id


def idempotency_key(key: str) -> str:
    return IDEMPOTENCY_PREFIX + key


def worker_key(worker_id: str) -> str:
    return WORKER_PREFIX + worker_id
