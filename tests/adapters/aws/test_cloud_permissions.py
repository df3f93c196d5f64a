"""Least privilege, checked against what the code really calls: every AWS call each function makes in
a full run of the cloud shape is allowed by that function's statements in template.yaml, on that
resource, and the table statements grant nothing the code does not use."""

import json

import pytest

from adapters import aws_lambda
from adapters.aws.client import AWSHandle
from tests.adapters.aws.lambda_events import Context, call, post, rest_get, run_jobs, v2

BATCH_ACTIONS = {"ChangeMessageVisibilityBatch": "ChangeMessageVisibility", "DeleteMessageBatch": "DeleteMessage",
                 "SendMessageBatch": "SendMessage"}
TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "ConditionCheck": "ConditionCheckItem",
                    "Delete": "DeleteItem"}
# What the Lambda service itself does with the jobs function's role to run its SQS triggers.
EVENT_SOURCE_NEEDS = {(queue, action) for queue in ("JobsQueue", "SlowJobsQueue")
                      for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")}


@pytest.fixture
def recorded(cloud, monkeypatch):
    """(function, resource, IAM action) of every call made through the forkline's AWS clients."""
    calls: set[tuple[str, str, str]] = set()
    phase = {"function": "HttpFunction"}
    resources = {cloud.names[name]: name for name, resource in cloud.template["Resources"].items()
                 if resource["Type"] in ("AWS::SQS::Queue", "AWS::DynamoDB::Table")}
    resources |= {uuid: name for name, uuid in cloud.mappings.items()}
    original = AWSHandle.client.fget
    hooked: set[int] = set()

    def record(params, model, **_):
        function, service = phase["function"], model.service_model.service_name
        if model.name == "TransactWriteItems":
            for item in params["TransactItems"]:
                (kind, write), = item.items()
                calls.add((function, resources[write["TableName"]], f"dynamodb:{TRANSACT_ACTIONS[kind]}"))
            return
        target = (params.get("QueueUrl") or params.get("TableName") or params.get("UUID")
                  or next(iter(params.get("RequestItems", {}))))
        on = resources[target] + (f"/index/{params['IndexName']}" if params.get("IndexName") else "")
        calls.add((function, on, f"{service}:{BATCH_ACTIONS.get(model.name, model.name)}"))

    def client(self):
        made = original(self)
        if id(made) not in hooked:
            hooked.add(id(made))
            made.meta.events.register(f"before-parameter-build.{self.service}", record)
        return made

    monkeypatch.setattr(AWSHandle, "client", property(client))
    return calls, phase


def granted_on(resource) -> str:
    """The template resource a statement's Resource names: a !GetAtt <resource>.Arn, or an event source
    mapping's ARN built with !Sub from SAM's logical id of the mapping, or a table's index as
    !Sub "${<table>.Arn}/index/<name>" (never "*")."""
    if resource.name == "GetAtt":
        return resource.value.removesuffix(".Arn")
    if resource.name == "Sub" and "/index/" in resource.value:
        table, index = resource.value.split("/index/")
        return table.removeprefix("${").removesuffix(".Arn}") + "/index/" + index
    assert resource.name == "Sub" and ":event-source-mapping:${" in resource.value, resource.value
    return resource.value.rsplit("${", 1)[1].rstrip("}")


def allowed(cloud, function: str) -> set[tuple[str, str]]:
    statements = cloud.template["Resources"][function]["Properties"]["Policies"][0]["Statement"]
    grants = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        grants |= {(granted_on(target), action) for target in targets for action in statement["Action"]}
    return grants


def test_each_function_calls_only_what_its_statements_allow(cloud, recorded, monkeypatch):
    calls, phase = recorded
    monkeypatch.setenv("JOB_BACKOFF_BASE", "0")
    ok = post({"message": "fine"})[1]["jobId"]
    post({"message": "keyed"}, key="k-1")
    post({"message": "keyed"}, key="k-1")
    bad = post({"message": "bad", "shouldFail": True})[1]["jobId"]
    slow = post({"type": "sleep", "seconds": 0})[1]["jobId"]
    # A message whose record is gone (expired, or sent by another producer): written from the message.
    cloud.sqs.send_message(QueueUrl=cloud.jobs_url, MessageBody=json.dumps(
        {"id": "orphan", "type": "message", "payload": {"message": "o"}, "maxAttempts": 4}))
    phase["function"] = "JobsFunction"
    for _ in range(4):
        run_jobs(cloud, Context())
    run_jobs(cloud, Context(), queue="SlowJobsQueue")
    run_jobs(cloud, Context(aws_lambda.STOP_MARGIN / 2))  # nothing left: no call, or a hand-back
    phase["function"] = "HttpFunction"
    assert rest_get(f"/jobs/{slow}")[1]["state"] == "completed"
    for queue in ("default", "slow"):
        assert call(v2("POST", f"/queues/{queue}/pause"))[0] == 200
        assert call(v2("POST", f"/queues/{queue}/resume"))[0] == 200
    assert rest_get(f"/jobs/{ok}")[1]["state"] == rest_get("/jobs/orphan")[1]["state"] == "completed"
    assert call(v2("GET", "/health"))[1]["dependencies"] == {"sqs": "up", "dynamodb": "up"}
    assert call(v2("GET", "/queue/stats"))[1]["failed"] == 1
    assert call(v2("GET", "/workers"))[1]["items"] == []  # no `forkline worker` beats here
    assert call(v2("DELETE", f"/jobs/{ok}"))[0] == 409
    assert call(v2("GET", "/jobs", query="state=completed&limit=5"))[0] == 200
    assert call(v2("GET", "/queue/history"))[0] == 200
    assert aws_lambda.http_handler(v2("DELETE", f"/jobs/{slow}/record"), None)["statusCode"] == 204  # check --cleanup
    assert call(v2("GET", f"/dlq/{bad}"))[0] == 200
    assert call(v2("POST", "/dlq/replay", json.dumps({"type": "message", "dryRun": True})))[0] == 200
    assert call(v2("POST", f"/dlq/{bad}/replay"))[0] == 202
    phase["function"] = "JobsFunction"
    for _ in range(4):
        run_jobs(cloud, Context())
    phase["function"] = "HttpFunction"
    assert call(v2("POST", "/dlq/purge", json.dumps({"confirm": True})))[1]["purged"] == 1

    for function in ("HttpFunction", "JobsFunction"):
        used = {(resource, action) for f, resource, action in calls if f == function}
        grants = allowed(cloud, function)
        assert used <= grants, f"{function} calls without permission: {sorted(used - grants)}"
        unused_table_grants = {g for g in grants if g[0].startswith("JobsTable")} - used
        assert not unused_table_grants, f"{function} is granted more than it uses: {sorted(unused_table_grants)}"
    assert EVENT_SOURCE_NEEDS <= allowed(cloud, "JobsFunction")
