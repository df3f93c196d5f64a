"""Events in the shapes the SAM CLI generates (tests/events/*.json), and a Lambda context."""

import base64
import json
import time
from pathlib import Path

from adapters import aws_lambda
from local.cloud_emulation import event_source

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name):
    return json.loads((EVENTS / name).read_text())


def v2(method, path, body=None, query="", content_type="application/json", headers=None, base64_body=False):
    """An API Gateway HTTP API (payload 2.0) event; `content_type=None` sends none, as curl -d without -H."""
    event = load("apigw_v2_post_jobs.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = query
    event["headers"].pop("content-type")
    if content_type is not None:
        event["headers"]["content-type"] = content_type
    event["headers"].update(headers or {})
    event["body"], event["isBase64Encoded"] = body, False
    if body is None:
        event["headers"].pop("content-length", None)
    else:
        event["headers"]["content-length"] = str(len(body.encode()))
        if base64_body:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body.encode()).decode(), True
    return event


def call(event):
    response = aws_lambda.http_handler(event, None)
    return response["statusCode"], json.loads(response["body"]), response


def post(body: dict, key: str | None = None, base64_body=True):
    """POST /jobs as `sam local generate-event apigateway http-api-proxy` shapes it: a base64 body
    and no Content-Type (curl -d without -H), a cookie."""
    headers = {"cookie": "session=abc"}
    if key:
        headers["idempotency-key"] = key
    return call(v2("POST", "/jobs", json.dumps(body), content_type=None, headers=headers,
                   base64_body=base64_body))


def rest_get(path: str, query: dict[str, list[str]] | None = None):
    """A REST API event under the `Prod` stage (requestContext.path carries the stage prefix)."""
    event = load("apigw_rest_get_health.json")
    event["path"] = path
    event["requestContext"]["path"] = f"/Prod{path}"
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["multiValueQueryStringParameters"] = query
    event["queryStringParameters"] = {k: v[-1] for k, v in query.items()} if query else None
    return call(event)


class Context:
    """What the Lambda runtime passes: the invocation's remaining time counts down from `seconds`."""

    function_name = "JobsFunction"
    aws_request_id = "3f8a1d9e-0000-4000-8000-000000000001"

    def __init__(self, seconds: float = 30.0):
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def sqs_event(stack, max_messages=10, queue="JobsQueue"):
    """Receive from the template's queue `queue` as the Lambda event source mapping does and build its
    event (local/cloud_emulation/event_source.py, the emulator of `forkline run --cloud`); checked against the SAM
    CLI's recorded shape."""
    messages = stack.sqs.receive_message(QueueUrl=stack.names[queue], MaxNumberOfMessages=max_messages,
                                         MessageSystemAttributeNames=["All"]).get("Messages", [])
    event = event_source.sqs_event(messages, stack.names[f"{queue}.Arn"])
    shape = load("sqs_batch.json")["Records"][0]
    assert all(record.keys() == shape.keys() for record in event["Records"])
    return event


def run_jobs(stack, context=None, max_messages=10, queue="JobsQueue"):
    """One invocation of the jobs function on what the queue `queue` delivers now, then what the event
    source mapping does with ReportBatchItemFailures: delete every record not reported. (event, result)."""
    event = sqs_event(stack, max_messages, queue)
    result = aws_lambda.jobs_handler(event, context or Context())
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    for record in event["Records"]:
        if record["messageId"] not in failed:
            stack.sqs.delete_message(QueueUrl=stack.names[queue], ReceiptHandle=record["receiptHandle"])
    return event, result
