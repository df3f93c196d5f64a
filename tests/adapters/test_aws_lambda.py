"""The Lambda entry points fed real-shaped events (tests/events/*.json), SQS mocked by moto."""

import copy
import json
from pathlib import Path

import pytest

from adapters import aws_lambda
from functions.models import DeadJob

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load(name):
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def cloud(aws, monkeypatch):
    monkeypatch.setenv("LOG_DIR", "")
    jobs = aws.create_queue(QueueName="jobs")["QueueUrl"]
    dlq = aws.create_queue(QueueName="jobs-dlq")["QueueUrl"]
    for name, value in {"QUEUE_BACKEND": "sqs", "JOBS_SQS_QUEUE_URL": jobs,
                        "DLQ_BACKEND": "sqs", "DLQ_SQS_QUEUE_URL": dlq}.items():
        monkeypatch.setenv(name, value)
    aws_lambda._http.cache_clear()
    aws_lambda._jobs_context.cache_clear()
    yield aws, jobs, dlq
    aws_lambda._http.cache_clear()
    aws_lambda._jobs_context.cache_clear()


def v2(method, path, body=None, query="", content_type="application/json"):
    event = load("apigw_v2_post_jobs.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = query
    event["body"] = body
    event["headers"]["content-type"] = content_type
    if body is None:
        event["headers"].pop("content-length", None)
    else:
        event["headers"]["content-length"] = str(len(body))
    return event


def call(event):
    response = aws_lambda.http_handler(event, None)
    return response["statusCode"], json.loads(response["body"]), response


def test_v2_post_jobs_enqueues_on_sqs(cloud):
    sqs, jobs, _ = cloud
    status, body, response = call(load("apigw_v2_post_jobs.json"))
    assert status == 202 and body["status"] == "queued"
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["location"] == f"/jobs/{body['jobId']}"
    message = json.loads(sqs.receive_message(QueueUrl=jobs)["Messages"][0]["Body"])
    assert message["id"] == body["jobId"]
    assert message["payload"] == {"message": "Hello from queue!", "shouldFail": False}


def test_every_route_through_v2(cloud):
    sqs, jobs, dlq = cloud
    assert call(v2("GET", "/"))[0] == 200
    assert call(v2("GET", "/health"))[1]["dependencies"] == {"sqs": "up"}
    assert call(v2("GET", "/queue/stats"))[1]["waiting"] == 0
    assert call(v2("GET", "/jobs/abc"))[0] == 404  # SQS mode keeps no job records
    sqs.send_message(QueueUrl=dlq, MessageBody=DeadJob(
        jobId="d1", type="message", payload={"message": "m", "shouldFail": True}, error="E", attempts=4,
        failedAt=1.0).model_dump_json())
    listed = call(v2("GET", "/dlq", query="limit=5"))[1]
    assert listed["total"] == 1 and listed["items"][0]["jobId"] == "d1"
    assert call(v2("POST", "/dlq/d1/replay"))[0] == 202
    assert call(v2("GET", "/queue/stats"))[1] == {
        "waiting": 1, "active": 0, "completed": 0, "failed": 0, "delayed": 0, "dlq": 0, "dlqPending": 0}


@pytest.mark.parametrize("body, content_type, status, code", [
    ("{nope", "application/json", 400, "invalid_json"),
    ('{"message": 3}', "application/json", 422, "validation_error"),
    ("message=hi", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
])
def test_bad_input_through_v2(cloud, body, content_type, status, code):
    got_status, got, _ = call(v2("POST", "/jobs", body, content_type=content_type))
    assert (got_status, got["code"]) == (status, code)


def test_rest_api_event(cloud):
    status, body, _ = call(load("apigw_rest_get_health.json"))
    assert status == 200 and body["status"] == "ok"
    event = load("apigw_rest_get_health.json")
    event["path"] = "/missing"
    assert call(event)[:2][0] == 404


def test_alb_event(cloud):
    status, body, _ = call(load("alb_get_dlq.json"))
    assert status == 200 and body == {"items": [], "total": 0, "offset": 0, "limit": 5}
    event = load("alb_get_dlq.json")
    event["queryStringParameters"] = {"limit": "1000"}
    status, body, _ = call(event)
    assert status == 422 and body["code"] == "validation_error"


def test_sqs_errors_are_a_503_json_error(cloud, monkeypatch):
    monkeypatch.setenv("DLQ_SQS_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/gone")
    aws_lambda._http.cache_clear()
    status, body, _ = call(v2("GET", "/dlq"))
    assert status == 503 and body["code"] == "service_unavailable" and body["details"] == {"dependency": "sqs"}


def test_jobs_handler_on_the_recorded_batch(cloud):
    result = aws_lambda.jobs_handler(load("sqs_batch.json"), None)
    assert result == {"batchItemFailures": [
        {"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"},
        {"itemIdentifier": "8d6c1f44-1f0e-4e2a-9d0b-2f3a9c4e5b61"},
    ]}
    event = copy.deepcopy(load("sqs_batch.json"))
    event["Records"] = event["Records"][:1]
    assert aws_lambda.jobs_handler(event, None) == {"batchItemFailures": []}


def template_environment(function: str) -> dict:
    """The environment template.yaml gives `function` (Globals merged with its own), parameters as named."""
    import yaml

    class Tagged(yaml.SafeLoader):
        pass

    def tagged(loader, tag, node):
        return f"{tag}:{loader.construct_scalar(node)}" if isinstance(node, yaml.ScalarNode) else tag

    Tagged.add_multi_constructor("!", tagged)
    template = yaml.load((Path(__file__).resolve().parents[2] / "template.yaml").read_text(), Loader=Tagged)
    merged = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    merged.update(template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {}))
    return merged


def test_the_template_wires_api_keys_into_the_http_function_only_and_it_is_enforced(cloud, monkeypatch, capfd):
    http_env, jobs_env = template_environment("HttpFunction"), template_environment("JobsFunction")
    assert http_env["API_KEYS"] == "Ref:ApiKeys" and "API_KEYS" not in jobs_env
    assert (http_env["JOB_BACKOFF_MAX"], jobs_env["JOB_BACKOFF_JITTER"]) == ("Ref:JobBackoffMax",
                                                                            "Ref:JobBackoffJitter")
    assert call(v2("GET", "/dlq"))[0] == 200  # open: a warning once per cold start
    assert call(v2("GET", "/dlq"))[0] == 200
    assert capfd.readouterr().out.count('"event": "auth_disabled"') == 1  # the log goes to stdout
    monkeypatch.setenv("API_KEYS", "cloud-key")
    aws_lambda._http.cache_clear()  # a new cold start with the parameter set
    assert call(v2("GET", "/dlq"))[0] == 401
    event = v2("GET", "/dlq")
    event["headers"]["x-api-key"] = "cloud-key"
    assert call(event)[0] == 200
