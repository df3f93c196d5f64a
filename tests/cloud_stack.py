"""template.yaml read as data, and its queues and table created in moto as the template declares them.

Tests of the cloud shape take their resources' attributes and their functions'
environment from the template itself, so a test cannot drift from what deploys.
"""

import json
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[1]


class Intrinsic:
    """A CloudFormation intrinsic function (!Ref, !Select, ...), kept to be evaluated."""

    def __init__(self, name: str, value):
        self.name, self.value = name, value


def yaml_load(path: Path = ROOT / "template.yaml"):
    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        else:
            value = loader.construct_sequence(node, deep=True)
        return Intrinsic(suffix, value)

    Loader.add_multi_constructor("!", construct)
    return yaml.load(path.read_text(), Loader=Loader)


def evaluate(value, template: dict, names: dict | None = None):
    """The value with !Ref (parameters at their defaults, resources from `names`), !Select and !Sub
    worked out."""
    names = names or {}
    if not isinstance(value, Intrinsic):
        return value
    if value.name == "Ref":
        return names[value.value] if value.value in names else template["Parameters"][value.value]["Default"]
    if value.name == "Select":
        index, items = (evaluate(v, template, names) for v in value.value)
        return evaluate(items[int(index)], template, names)
    if value.name == "Sub":
        text, variables = value.value
        for name, inner in variables.items():
            text = text.replace("${" + name + "}", str(evaluate(inner, template, names)))
        return text
    if value.name == "GetAtt":
        return names[value.value]
    raise ValueError(f"cannot evaluate !{value.name}")


class Stack:
    """The template's jobs queue, DLQ and table, made in the mocked AWS account (inside mock_aws)."""

    def __init__(self):
        self.template = yaml_load()
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        resources = self.template["Resources"]
        self.names: dict[str, str] = {}
        self.dlq_url = self.create_queue("JobsDeadLetterQueue")
        self.jobs_url = self.create_queue("JobsQueue")
        table = resources["JobsTable"]["Properties"]
        self.table = "forkline-jobs"
        self.dynamodb.create_table(TableName=self.table, BillingMode=table["BillingMode"],
                                   KeySchema=table["KeySchema"], AttributeDefinitions=table["AttributeDefinitions"])
        self.dynamodb.update_time_to_live(TableName=self.table, TimeToLiveSpecification={
            "AttributeName": table["TimeToLiveSpecification"]["AttributeName"],
            "Enabled": table["TimeToLiveSpecification"]["Enabled"]})
        self.dynamodb.update_continuous_backups(TableName=self.table, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]})
        self.names["JobsTable"] = self.table

    def create_queue(self, resource: str) -> str:
        """The queue `resource` with its visibility timeout and redrive policy (maxReceiveCount at the
        parameters' defaults)."""
        props = self.template["Resources"][resource]["Properties"]
        attributes = {"VisibilityTimeout": str(props.get("VisibilityTimeout", 30))}
        if "RedrivePolicy" in props:
            policy = props["RedrivePolicy"]
            attributes["RedrivePolicy"] = json.dumps({
                "deadLetterTargetArn": evaluate(policy["deadLetterTargetArn"], self.template, self.names),
                "maxReceiveCount": evaluate(policy["maxReceiveCount"], self.template)})
        url = self.sqs.create_queue(QueueName=resource, Attributes=attributes)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.names[resource], self.names[f"{resource}.Arn"] = url, arn
        return url

    def environment(self, function: str) -> dict[str, str]:
        """The environment the template gives `function` (Globals merged with its own), worked out."""
        merged = dict(self.template["Globals"]["Function"]["Environment"]["Variables"])
        merged.update(self.template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {}))
        return {name: str(evaluate(value, self.template, self.names)) for name, value in merged.items()}

    def environment_source(self, function: str) -> dict:
        """The same, unevaluated (intrinsics kept), to check what each variable is wired to."""
        merged = dict(self.template["Globals"]["Function"]["Environment"]["Variables"])
        merged.update(self.template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {}))
        return merged
