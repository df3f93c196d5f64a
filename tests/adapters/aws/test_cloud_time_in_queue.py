"""Time in queue on the cloud pairing (SQS + DynamoDB in moto): the record a runner starts keeps when the job
became claimable, and the oldest waiting job per queue is read from the ByState index."""

import time

from adapters import aws_lambda
from tests.adapters.aws.lambda_events import post, rest_get, run_jobs


def test_the_oldest_waiting_job_and_the_wait_a_runner_measures(cloud):
    jobs = aws_lambda._jobs_runner().jobs
    assert jobs.oldest_waiting(time.time()) == {}
    first = post({"message": "first"})[1]["jobId"]
    post({"message": "second"})
    post({"message": "later", "delay": 600})  # not due: not waiting
    created = rest_get(f"/jobs/{first}")[1]["createdAt"]
    oldest = jobs.oldest_waiting(time.time())
    assert list(oldest) == ["default"] and abs(oldest["default"] - created) < 0.01
    job = jobs.get(first)
    started = jobs.start(job, 1, time.time() + 5)
    assert started.state == "active" and started.ready_at() == job.ready_at() == job.updatedAt  # as it was
    run_jobs(cloud)
    assert jobs.oldest_waiting(time.time()) == {}
