"""The template's queues and table in moto's in-process mock (inside mock_aws), created by the same
code as `forkline run --cloud` (local/cloud_template.py)."""

import boto3

from local.cloud_template import function_environment, provision, yaml_load


class Stack:
    def __init__(self):
        self.template = yaml_load()
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        self.names = provision(self.template, self.sqs, self.dynamodb)
        self.jobs_url, self.dlq_url = self.names["JobsQueue"], self.names["JobsDeadLetterQueue"]
        self.table = self.names["JobsTable"]

    def recreate_jobs_queue(self) -> str:
        """The jobs queue again, with the template's attributes (after a test deleted it)."""
        props = self.template["Resources"]["JobsQueue"]["Properties"]
        return self.sqs.create_queue(QueueName="JobsQueue", Attributes={
            "VisibilityTimeout": str(props["VisibilityTimeout"])})["QueueUrl"]

    def environment(self, function: str) -> dict[str, str]:
        """The environment the template gives `function`, worked out."""
        return function_environment(self.template, function, self.names)

    def environment_source(self, function: str) -> dict:
        """The same, unevaluated (intrinsics kept), to check what each variable is wired to."""
        merged = dict(self.template["Globals"]["Function"]["Environment"]["Variables"])
        merged.update(self.template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {}))
        return merged
