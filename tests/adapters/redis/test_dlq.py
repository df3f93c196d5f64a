import threading
import time

from adapters.redis import keys
from functions import dead_letters
from functions.models import DeadJob


def entry(job_id, failed_at):
    return DeadJob(jobId=job_id, type="message", payload={"message": job_id}, error="E", attempts=4,
                   failedAt=failed_at)


def test_put_list_get_take_count(ports):
    dlq = ports.dlq
    for job_id in ["b", "a", "c"]:
        dlq.put(entry(job_id, float({"a": 1, "b": 2, "c": 3}[job_id])))
    assert dlq.count() == 3
    assert [e.jobId for e in dlq.list(0, 10)] == ["a", "b", "c"]
    assert [e.jobId for e in dlq.list(1, 1)] == ["b"]
    assert dlq.get("c").payload == {"message": "c"}
    assert [e.jobId for e in dlq.take_many(["b"])] == ["b"]
    assert dlq.take_many(["b"]) == [] and dlq.get("b") is None
    assert dlq.count() == 2 and [e.jobId for e in dlq.list(0, 10)] == ["a", "c"]
    dlq.put(entry("a", 1.0))  # putting the same job twice keeps one entry
    assert dlq.count() == 2


def test_two_operators_replaying_at_once_replay_each_job_once(ports):
    """Two threads run POST /dlq/replay's function at the same moment over the same dead jobs, on a real
    Redis, 20 times: each job goes back on the queue once, by one of them."""
    queue = keys.queue_keys("default")
    client = ports.redis.client
    for round_ in range(20):
        job_ids = [f"default.r{round_}-{n}" for n in range(10)]
        for n, job_id in enumerate(job_ids):
            ports.dlq.put(entry(job_id, float(n)))
        barrier = threading.Barrier(2)
        reports = []

        def replay(barrier=barrier, reports=reports):
            barrier.wait(timeout=10)
            reports.append(dead_letters.replay_matching({}, ports.dlq, ports.jobs, time.time(), 4, max_replays=3))

        threads = [threading.Thread(target=replay) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        replayed = [job_id for report in reports for job_id in report.jobIds]
        assert sorted(replayed) == sorted(job_ids), reports  # each once, by one operator or the other
        assert ports.dlq.count() == 0
        assert client.llen(queue.list) == 10 * (round_ + 1)
        assert all(ports.jobs.get(job_id).replays == 1 for job_id in job_ids)
