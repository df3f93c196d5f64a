"""The Lambda image (`make image`, tagged forkline:lambda) answering the Lambda Runtime API: the
container's runtime client (AWS's base, or awslambdaric on the Python base) polls a Runtime API
served inside the test (tests/deploy/lambda_runtime_api.py) and reaches SQS and DynamoDB in moto's
server, provisioned from template.yaml and wired as the template wires each function."""

import json
import subprocess
import sys
import time

import boto3
import pytest

from harness.processes import stop_pid, wait_until
from local.cloud_emulation.cloud_template import function_environment, provision, yaml_load
from local.runtime.embedded import FAKE_CREDENTIALS
from local.runtime.redis_server import free_port
from tests.adapters.aws.lambda_events import load, v2
from tests.deploy.lambda_runtime_api import RuntimeAPI
from tests.deploy.podman import PREFIX, podman, remove
from tests.figures import report

pytestmark = pytest.mark.slow


class Cloud:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, **self.credentials())
        self.template = yaml_load()
        self.names = provision(self.template, self.sqs, boto3.client("dynamodb", endpoint_url=endpoint,
                                                                      **self.credentials()))

    @staticmethod
    def credentials() -> dict[str, str]:
        return {"aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], "region_name": "us-east-1",
                "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}

    def environment(self, function: str) -> dict[str, str]:
        return {**function_environment(self.template, function, self.names), **FAKE_CREDENTIALS,
                "AWS_ENDPOINT_URL": self.endpoint}


@pytest.fixture(scope="module")
def cloud():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        probe = boto3.client("sqs", endpoint_url=endpoint, **Cloud.credentials())

        def answers() -> bool:
            try:
                return probe.list_queues() is not None
            except Exception:
                return False

        wait_until(answers, 30, 0.2, "moto's server")
        yield Cloud(endpoint)
    finally:
        stop_pid(proc)


@pytest.fixture
def function(images, cloud):
    """start(resource, handler) runs the image with the template's environment for `resource`; yields the
    Runtime API it polls, and the seconds from `podman run` to its first poll (its init)."""
    names: list[str] = []
    apis: list[RuntimeAPI] = []

    def start(resource: str, handler: str) -> tuple[RuntimeAPI, float]:
        api = RuntimeAPI().__enter__()
        apis.append(api)
        name = f"{PREFIX}-lambda-{len(names)}"
        names.append(name)
        env = {**cloud.environment(resource), "AWS_LAMBDA_RUNTIME_API": api.address,
               "AWS_LAMBDA_FUNCTION_NAME": resource, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
               "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"}
        started = time.monotonic()
        podman("run", "--detach", "--name", name, "--network", "host",
               *[f"--env={key}={value}" for key, value in env.items()], "forkline:lambda", handler)
        wait_until(lambda: api.first_poll is not None, 60, 0.05, f"{resource}'s first poll of the Runtime API")
        return api, api.first_poll - started

    try:
        yield start
    finally:
        remove(*names)
        for api in apis:
            api.__exit__(None, None, None)


def test_the_http_function_answers_an_api_gateway_event(function, cloud):
    api, init = function("HttpFunction", "adapters.aws_lambda.http_handler")
    started = time.monotonic()
    kind, response = api.invoke(load("apigw_v2_post_jobs.json"))
    first = time.monotonic() - started
    assert kind == "response" and response["statusCode"] == 202, response
    job_id = json.loads(response["body"])["jobId"]
    message = cloud.sqs.receive_message(QueueUrl=cloud.names["JobsQueue"])["Messages"][0]
    assert json.loads(message["Body"])["id"] == job_id  # on the template's queue, in moto
    kind, response = api.invoke(v2("GET", f"/jobs/{job_id}"))
    assert kind == "response" and json.loads(response["body"])["state"] == "queued"  # its record, in DynamoDB
    kind, error = api.invoke({"not": "an event of any source"})  # the runtime client posts the exception
    assert kind == "error" and error["errorType"] and not api.init_errors
    report(f"lambda image: init (podman run to the first poll) {init:.1f} s, first invocation {first:.2f} s")


def test_the_jobs_function_answers_an_sqs_batch_with_its_failures(function):
    api, _ = function("JobsFunction", "adapters.aws_lambda.jobs_handler")
    kind, response = api.invoke(load("sqs_batch.json"))
    assert kind == "response", response
    assert response == {"batchItemFailures": [  # the failing job (a retry) and the record that is no job
        {"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"},
        {"itemIdentifier": "8d6c1f44-1f0e-4e2a-9d0b-2f3a9c4e5b61"},
    ]}
