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
