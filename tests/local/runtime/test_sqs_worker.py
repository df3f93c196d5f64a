"""`forkline worker` on SQS + DynamoDB (QUEUE_BACKEND=sqs, JOB_STORE=dynamodb) against moto's server on
loopback, with the queues and the table of template.yaml."""

import json
import signal
import time
import urllib.request

import boto3
import pytest
from moto.server import ThreadedMotoServer

from adapters.aws.dlq import SQSDLQ
from adapters.aws.job_table import JobTable
from adapters.aws.jobs import SQSJobQueue
from adapters.aws.workers import DynamoWorkerRegistry
from functions import routes
from harness.processes import Forkline, wait_until
from local.cloud_emulation.cloud_template import JOBS_FUNCTION, function_environment, provision, yaml_load
from local.runtime.redis_server import free_port

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_REGION": "us-east-1"}


class Cloud:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.sqs = boto3.client("sqs", endpoint_url=endpoint)
        self.dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
        template = yaml_load()
        self.names = provision(template, self.sqs, self.dynamodb)
        self.env = {**AWS, "AWS_ENDPOINT_URL": endpoint, **function_environment(template, JOBS_FUNCTION, self.names)}
        self.env.pop("LOG_DIR")
        self.jobs_url, self.dlq_url = self.names["JobsQueue"], self.names["JobsDeadLetterQueue"]
        self.queue = SQSJobQueue({"default": self.jobs_url, "slow": self.names["SlowJobsQueue"]},
                                 JobTable(self.names["JobsTable"], 86400))

    def submit(self, body: dict) -> str:
        return routes.submit_job(body, self.queue, lambda: f"j{time.monotonic_ns()}", time.time(), 4)[0].jobId

    def state(self, job_id: str) -> str:
        record = self.queue.get(job_id)
        return record.state.value if record else "absent"

    def visible(self, queue: str = "JobsQueue") -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.names[queue],
                                              AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


@pytest.fixture
def cloud(monkeypatch):
    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto's state is one per Python process, shared by every server it runs: start from nothing.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    yield Cloud(endpoint)
    server.stop()


def worker(tmp_path, cloud, **env) -> Forkline:
    return Forkline("worker", tmp_path, {**cloud.env, "LOG_LEVEL": "debug", "METRICS_PORT": "0",
                                         "WORKER_HEARTBEAT": "0.5", **env}).start(wait_http=False)


def job_lines(fl: Forkline, event: str, job_id: str) -> list[dict]:
    lines = [json.loads(line) for line in fl.output().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event and line.get("jobId") == job_id]


def test_a_job_runs_once_the_worker_beats_and_serves_its_metrics(tmp_path, cloud):
    metrics_port = free_port()
    fl = worker(tmp_path, cloud, METRICS_PORT=str(metrics_port))
    try:
        job_id = cloud.submit({"message": "hello"})
        wait_until(lambda: cloud.state(job_id) == "completed", 20, 0.1, "job completed")
        record = cloud.queue.get(job_id)
        assert record.attempts == 1 and record.result == {"processed": "hello"}
        assert cloud.queue.counts()["default"]["completed"] == 1
        registry = DynamoWorkerRegistry(cloud.queue.table)
        workers = wait_until(lambda: [w for w in registry.list() if w.done == 1], 5, 0.1, "a heartbeat")
        assert len(workers) == 1 and workers[0].concurrency == 10  # 5 threads per named queue
        assert workers[0].queues == ["default", "slow"]
        assert len(job_lines(fl, "job_completed", job_id)) == 1

        def exposition():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as response:
                    return response.read().decode()
            except OSError:
                return ""

        completed = 'forkline_jobs_completed_total{queue="default",type="message"} 1.0'
        text = wait_until(lambda: (t := exposition()) and completed in t and t, 10, 0.2,
                          "the completion in the worker's metrics")
        # read from SQS
        assert "forkline_queue_up 1.0" in text and 'forkline_queue_jobs{queue="default",state="waiting"} 0.0' in text
    finally:
        assert fl.stop(signal.SIGTERM, timeout=30) == 0, fl.output()[-3000:]
    assert wait_until(lambda: registry.list() == [], 5, 0.1, "the worker leaves the registry") is True


def test_a_failing_job_is_retried_with_backoff_then_reaches_the_dlq(tmp_path, cloud):
    fl = worker(tmp_path, cloud, JOB_BACKOFF_BASE="1")  # 1, 2, 4 s (SQS visibility is whole seconds)
    try:
        job_id = cloud.submit({"message": "doomed", "shouldFail": True})
        wait_until(lambda: cloud.state(job_id) == "dead", 30, 0.1, "job dead")
        starts = [line["time"] for line in job_lines(fl, "job_started", job_id)]
        assert len(starts) == 4
        moments = [time.mktime(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + float(t[19:23]) for t in starts]
        gaps = [b - a for a, b in zip(moments, moments[1:], strict=False)]
        for gap, delay in zip(gaps, (1, 2, 4), strict=True):
            assert delay - 0.1 <= gap <= delay + 2.0, gaps
        entry = SQSDLQ(cloud.dlq_url).get(job_id)
        assert entry.attempts == 4 and entry.error == "JobFailed: Job failed on purpose: doomed"
        assert "Traceback" in entry.traceback
        assert cloud.queue.counts()["default"]["failed"] == 1 and cloud.visible() == 0
    finally:
        assert fl.stop(signal.SIGTERM, timeout=30) == 0, fl.output()[-3000:]


def test_sigterm_hands_the_unstarted_messages_back_at_once_and_finishes_the_running_job(tmp_path, cloud):
    ids = [cloud.submit({"type": "sleep", "seconds": 3}) for _ in range(6)]
    fl = worker(tmp_path, cloud, WORKER_CONCURRENCY="1", GRACEFUL_TIMEOUT="20")
    try:
        running = wait_until(lambda: next((i for i in ids if cloud.state(i) == "active"), None), 20, 0.05, "a start")
        assert cloud.visible("SlowJobsQueue") == 0  # one batch took all six: one runs, five wait in the worker
        fl.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: cloud.visible("SlowJobsQueue") == 5, 2, 0.05, "the five unstarted messages visible again")
        assert fl.proc.poll() is None and cloud.state(running) == "active"  # still finishing its job
        assert fl.stop(signal.SIGTERM, timeout=30) == 0, fl.output()[-3000:]
    finally:
        fl.stop(signal.SIGKILL, timeout=10)
    assert cloud.state(running) == "completed"
    assert sorted(cloud.state(i) for i in ids) == ["completed"] + ["queued"] * 5


def test_a_long_job_keeps_its_message_invisible(tmp_path, cloud):
    cloud.sqs.set_queue_attributes(QueueUrl=cloud.names["SlowJobsQueue"], Attributes={"VisibilityTimeout": "4"})
    fl = worker(tmp_path, cloud, WORKER_CONCURRENCY="2")
    try:
        job_id = cloud.submit({"type": "sleep", "seconds": 9})  # over twice the visibility timeout
        wait_until(lambda: cloud.state(job_id) == "completed", 20, 0.1, "long job completed")
        assert len(job_lines(fl, "job_started", job_id)) == 1  # never delivered to the second thread
        assert cloud.queue.get(job_id).attempts == 1
    finally:
        assert fl.stop(signal.SIGTERM, timeout=30) == 0, fl.output()[-3000:]


def test_a_job_still_running_after_sigterm_keeps_its_message_invisible(tmp_path, cloud):
    cloud.sqs.set_queue_attributes(QueueUrl=cloud.names["SlowJobsQueue"], Attributes={"VisibilityTimeout": "4"})
    fl = worker(tmp_path, cloud, WORKER_CONCURRENCY="1", GRACEFUL_TIMEOUT="30")
    try:
        job_id = cloud.submit({"type": "sleep", "seconds": 14})  # the drain outlasts the poll by > 2 timeouts
        wait_until(lambda: cloud.state(job_id) == "active", 20, 0.05, "the job started")
        fl.proc.send_signal(signal.SIGTERM)
        while cloud.state(job_id) == "active":  # draining: the message must stay hidden all along
            seen = cloud.sqs.receive_message(QueueUrl=cloud.names["SlowJobsQueue"], VisibilityTimeout=0).get(
                "Messages", [])
            assert seen == [], "the running job's message became visible during the drain"
            time.sleep(0.5)
        assert cloud.state(job_id) == "completed"
        code = fl.proc.wait(30)  # the drain ends on its own once the job is done
        assert code == 0, (code, fl.output()[-3000:])
    finally:
        fl.stop(signal.SIGKILL, timeout=10)


def test_each_queue_has_its_own_poller_and_a_paused_queue_is_not_received_from(tmp_path, cloud):
    cloud.queue.pause("slow", True)
    fl = worker(tmp_path, cloud, WORKER_CONCURRENCY="1")
    try:
        held = cloud.submit({"type": "sleep", "seconds": 0})
        quick = cloud.submit({"message": "not paused"})
        wait_until(lambda: cloud.state(quick) == "completed", 20, 0.1, "the default queue's job")
        time.sleep(3)  # over the worker's paused-flag check (2 s) and a poll
        assert cloud.state(held) == "queued" and cloud.visible("SlowJobsQueue") == 1  # never received
        assert cloud.queue.counts()["slow"]["paused"] == 1
        cloud.queue.pause("slow", False)
        wait_until(lambda: cloud.state(held) == "completed", 20, 0.1, "the resumed queue's job")
        assert cloud.queue.get(held).attempts == 1  # no attempt spent while paused
    finally:
        assert fl.stop(signal.SIGTERM, timeout=30) == 0, fl.output()[-3000:]
