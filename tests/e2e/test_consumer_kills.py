"""2,000 jobs on two queues while the consumer is SIGKILLed 5 times at random moments: nothing lost,
counted once, each queue's figures exact (failing `message` jobs on `default`, `sleep` jobs on `slow`)."""

import os
import random
import signal
import time

import pytest

from adapters.redis import keys
from adapters.wiring import build_ports
from functions import routes
from harness.processes import Forkline, children_of, wait_until

QUEUES = (keys.queue_keys("default"), keys.queue_keys("slow"))


def total(ports, name: str) -> int:
    return sum(counts[name] for counts in ports.jobs.counts().values())

JOBS, FAILING, KILLS = 2000, 200, 5


def consumer_pid(worker: Forkline) -> int | None:
    pids = children_of(worker.proc.pid)
    return pids[0] if len(pids) == 1 else None


@pytest.mark.slow
def test_2000_jobs_survive_5_consumer_sigkills(tmp_path, settings):
    rng = random.Random(20261129)
    ports = build_ports(settings)
    failing = set(rng.sample(range(JOBS), FAILING))
    # 1,800 jobs of 50 ms on 5 threads: ~18 s of work, so jobs are in flight at every kill.
    ids = {}
    for n in range(JOBS):
        body = {"message": f"fail {n}", "shouldFail": True} if n in failing else {"type": "sleep", "seconds": 0.05}
        ids[n] = routes.submit_job(body, ports.jobs, lambda n=n: f"job-{n:04d}", time.time(), 4)[0].jobId
    worker = Forkline("worker", tmp_path, {
        "REDIS_URL": settings.redis_url, "JOB_LEASE": "1", "JOB_BACKOFF_BASE": "0.1", "JOB_MAX_RETRIES": "3",
        "WORKER_CONCURRENCY": "5", "GRACEFUL_TIMEOUT": "5"}).start(wait_http=False)
    killed = []
    try:
        for _ in range(KILLS):
            pid = wait_until(lambda: consumer_pid(worker), 15, 0.05, "a consumer")
            time.sleep(rng.uniform(0.3, 1.5))
            wait_until(lambda: total(ports, "active") > 0, 10, 0.01, "jobs in flight")
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            wait_until(lambda pid=pid: consumer_pid(worker) not in (None, pid), 15, 0.05, "a new consumer")

        def settled() -> bool:
            return (total(ports, "completed") + total(ports, "failed") >= JOBS
                    and not total(ports, "waiting") + total(ports, "active") + total(ports, "dlqPending"))

        wait_until(settled, 120, 0.2, "every job completed or dead")
    finally:
        assert worker.stop(signal.SIGTERM, timeout=30) == 0
    assert len(set(killed)) == KILLS
    records = {n: ports.jobs.get(job_id) for n, job_id in ids.items()}
    states = {n: record.state.value for n, record in records.items()}
    assert {n for n, state in states.items() if state == "dead"} == failing
    assert all(state == "completed" for n, state in states.items() if n not in failing)
    idle = {"waiting": 0, "active": 0, "delayed": 0, "dlqPending": 0, "paused": 0}
    assert ports.jobs.counts() == {"default": {**idle, "completed": 0, "failed": FAILING},
                                   "slow": {**idle, "completed": JOBS - FAILING, "failed": 0}}
    assert ports.dlq.count_by_queue() == {"default": FAILING, "slow": 0}
    assert all(ports.dlq.get(ids[n]) is not None for n in failing)
    assert all(ports.redis.client.zcard(queue.leases) == 0 for queue in QUEUES)
    ran_twice = sum(1 for n, record in records.items() if n not in failing and record.attempts > 1)
    print(f"\n{KILLS} SIGKILLs: {JOBS - FAILING} completed, {FAILING} dead-lettered, "
          f"{ran_twice} job(s) ran more than once")
