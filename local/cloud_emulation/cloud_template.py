"""template.yaml read as data, and its queues and table created as it declares them.

Used by `forkline run --cloud` (on its embedded moto server) and by the tests of
the cloud shape, so neither can drift from what deploys. The template ships in
the wheel (package data: local/cloud_emulation/template.yaml, a link to the project's
template.yaml) so the command works outside the checkout.
"""

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

# The template's resources forkline reads (every AWS::SQS::Queue is created: one per named queue, and the DLQ).
JOBS_FUNCTION, JOBS_TABLE = "JobsFunction", "JobsTable"
JOBS_QUEUE, DEAD_LETTER_QUEUE = "JobsQueue", "JobsDeadLetterQueue"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}


class Intrinsic:
    """A CloudFormation intrinsic function (!Ref, !GetAtt, !Select, !Sub), kept to be evaluated."""

    def __init__(self, name: str, value: Any):
        self.name, self.value = name, value


def template_path() -> Path:
    return Path(str(resources.files("local.cloud_emulation") / "template.yaml"))


def yaml_load(path: Path | None = None) -> dict[str, Any]:
    import yaml  # the `cloud` extra (and the test extra)

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: Any, suffix: str, node: Any) -> Intrinsic:
        if isinstance(node, yaml.ScalarNode):
            return Intrinsic(suffix, loader.construct_scalar(node))
        assert isinstance(node, yaml.SequenceNode)
        return Intrinsic(suffix, loader.construct_sequence(node, deep=True))

    Loader.add_multi_constructor("!", construct)
    loaded: dict[str, Any] = yaml.load((path or template_path()).read_text(), Loader=Loader)  # noqa: S506
    return loaded


def evaluate(value: Any, template: dict[str, Any], names: dict[str, Any] | None = None) -> Any:
    """The value with !Ref (parameters at their defaults unless in `names`, resources from `names`),
    !GetAtt (from `names`), !Select and !Sub worked out."""
    names = names or {}
    if not isinstance(value, Intrinsic):
        return value
    if value.name in ("Ref", "GetAtt"):
        return names[value.value] if value.value in names else template["Parameters"][value.value]["Default"]
    if value.name == "Select":
        index, items = (evaluate(v, template, names) for v in value.value)
        return evaluate(items[int(index)], template, names)
    if value.name == "Sub":
        text, variables = value.value if isinstance(value.value, list) else (value.value, {})
        for name, inner in variables.items():
            text = text.replace("${" + name + "}", str(evaluate(inner, template, names)))
        # ${Resource} and ${AWS::Region}-style names of the short form
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(PSEUDO.get(m[1]) or evaluate(Intrinsic("Ref", m[1]), template,
                                                                                   names)), text)
    raise ValueError(f"cannot evaluate !{value.name}")


def function_environment(template: dict[str, Any], function: str, names: dict[str, Any]) -> dict[str, str]:
    """The environment the template gives `function` (Globals merged with its own), worked out."""
    merged = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    merged.update(template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {}))
    return {name: str(evaluate(value, template, names)) for name, value in merged.items()}


def triggers(template: dict[str, Any]) -> tuple[dict[str, int], float]:
    """({queue resource: BatchSize} of the jobs function's SQS triggers, its Timeout in seconds)."""
    function = template["Resources"][JOBS_FUNCTION]["Properties"]
    events = [e["Properties"] for e in function["Events"].values() if e["Type"] == "SQS"]
    timeout = function.get("Timeout", template["Globals"]["Function"].get("Timeout", 3))
    return {e["Queue"].value.removesuffix(".Arn"): int(e.get("BatchSize", 10)) for e in events}, float(timeout)


def event_source_names(template: dict[str, Any]) -> dict[str, str]:
    """The jobs function's event source mappings (SAM names them <function><event>), as a local run
    has none: their ids are empty (the emulated trigger reads a queue's paused flag instead)."""
    function = template["Resources"][JOBS_FUNCTION]["Properties"]
    return {JOBS_FUNCTION + name: "" for name, event in function["Events"].items() if event["Type"] == "SQS"}


def provision(template: dict[str, Any], sqs: Any, dynamodb: Any, table_name: str = "forkline-jobs",
              parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create the SQS queues (the DLQ first, then one per named queue, with their visibility timeout
    and redrive policy) and the job table (key schema, billing, TTL, point-in-time recovery) as the
    template declares them; `parameters` override the template's defaults. Returns the names:
    resource -> URL or table name, and "<resource>.Arn"."""
    names: dict[str, Any] = {**event_source_names(template), **(parameters or {})}
    queues = [name for name, r in template["Resources"].items() if r["Type"] == "AWS::SQS::Queue"]
    for resource in sorted(queues, key=lambda name: "RedrivePolicy" in template["Resources"][name]["Properties"]):
        props = template["Resources"][resource]["Properties"]
        attributes = {"VisibilityTimeout": str(props.get("VisibilityTimeout", 30))}
        if "RedrivePolicy" in props:
            policy = props["RedrivePolicy"]
            attributes["RedrivePolicy"] = json.dumps({
                "deadLetterTargetArn": evaluate(policy["deadLetterTargetArn"], template, names),
                "maxReceiveCount": evaluate(policy["maxReceiveCount"], template, names)})
        url = sqs.create_queue(QueueName=resource, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        names[resource], names[f"{resource}.Arn"] = url, arn
    table = template["Resources"][JOBS_TABLE]["Properties"]
    dynamodb.create_table(TableName=table_name, BillingMode=table["BillingMode"], KeySchema=table["KeySchema"],
                          AttributeDefinitions=table["AttributeDefinitions"],
                          GlobalSecondaryIndexes=table.get("GlobalSecondaryIndexes", []))
    ttl = table["TimeToLiveSpecification"]
    dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification={
        "AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]})
    dynamodb.update_continuous_backups(TableName=table_name, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]})
    names[JOBS_TABLE] = table_name
    return names
