"""The Lambda entry points fed real-shaped events (tests/events/*.json), SQS mocked by moto."""

import copy
import json

import pytest

from adapters import aws_lambda
from functions.models import DeadJob
from tests.adapters.aws.lambda_events import call, load, v2
from tests.stats import template_figures


def test_v2_post_jobs_enqueues_on_sqs_and_records_the_job(cloud):
    status, body, response = call(load("apigw_v2_post_jobs.json"))
    assert status == 202 and body["status"] == "queued"
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["location"] == f"/jobs/{body['jobId']}"
    message = json.loads(cloud.sqs.receive_message(QueueUrl=cloud.jobs_url)["Messages"][0]["Body"])
    assert message["id"] == body["jobId"]
    assert message["payload"] == {"message": "Hello from queue!", "shouldFail": False}
    record = call(v2("GET", f"/jobs/{body['jobId']}"))[1]
    assert record["state"] == "queued" and record["requestId"] == headers["x-request-id"]


def test_every_route_through_v2(cloud):
    assert call(v2("GET", "/"))[0] == 200
    assert call(v2("GET", "/health"))[1]["dependencies"] == {"sqs": "up", "dynamodb": "up"}
    assert call(v2("GET", "/queue/stats"))[1]["waiting"] == 0
    assert call(v2("GET", "/jobs/abc"))[0] == 404
    cloud.sqs.send_message(QueueUrl=cloud.dlq_url, MessageBody=DeadJob(
        jobId="d1", type="message", payload={"message": "m", "shouldFail": True}, error="E", attempts=4,
        failedAt=1.0).model_dump_json())
    listed = call(v2("GET", "/dlq", query="limit=5"))[1]
    assert listed["total"] == 1 and listed["items"][0]["jobId"] == "d1"
    assert call(v2("POST", "/dlq/d1/replay"))[0] == 202
    assert call(v2("GET", "/jobs/d1"))[1]["state"] == "queued"  # the replay wrote its record
    assert template_figures(call(v2("GET", "/queue/stats"))[1]) == {
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
    monkeypatch.setenv("DLQ_SQS_QUEUE_URL", cloud.dlq_url.replace("JobsDeadLetterQueue", "gone"))
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


def test_the_template_wires_api_keys_into_the_http_function_only_and_it_is_enforced(cloud, monkeypatch, capfd):
    http_env, jobs_env = cloud.environment_source("HttpFunction"), cloud.environment_source("JobsFunction")
    assert http_env["API_KEYS"].value == "ApiKeys" and "API_KEYS" not in jobs_env
    assert (http_env["JOB_BACKOFF_MAX"].value, jobs_env["JOB_BACKOFF_JITTER"].value) == ("JobBackoffMax",
                                                                                        "JobBackoffJitter")
    assert call(v2("GET", "/dlq"))[0] == 200  # open: a warning once per cold start
    assert call(v2("GET", "/dlq"))[0] == 200
    assert capfd.readouterr().out.count('"event": "auth_disabled"') == 1  # the log goes to stdout
    monkeypatch.setenv("API_KEYS", "cloud-key")
    aws_lambda._http.cache_clear()  # a new cold start with the parameter set
    assert call(v2("GET", "/dlq"))[0] == 401
    event = v2("GET", "/dlq")
    event["headers"]["x-api-key"] = "cloud-key"
    assert call(event)[0] == 200
