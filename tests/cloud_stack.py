"""The template's queues and table in moto's in-process mock (inside mock_aws), created by the same
code as `forkline run --cloud` (local/cloud_emulation/cloud_template.py), and the jobs function's event source
mappings (one per SQS event in the template, named as SAM names them) on a stand-in function, so
that pausing a queue has a mapping to disable. Each mapping reads a stand-in queue of its own:
moto runs a mapping's function in Docker when its queue gets a message, and the tests run the
handler themselves."""

import io
import zipfile

import boto3

from local.cloud_emulation.cloud_template import JOBS_FUNCTION, function_environment, provision, yaml_load


class Stack:
    def __init__(self):
        self.template = yaml_load()
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        self.names = provision(self.template, self.sqs, self.dynamodb)
        self.jobs_url, self.dlq_url = self.names["JobsQueue"], self.names["JobsDeadLetterQueue"]
        self.table = self.names["JobsTable"]
        self.mappings = self.create_event_source_mappings()  # SAM's logical id -> mapping UUID
        self.names.update(self.mappings)

    def create_event_source_mappings(self) -> dict[str, str]:
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="jobs-function", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.lambda_client = boto3.client("lambda", region_name="us-east-1")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
        self.lambda_client.create_function(FunctionName=JOBS_FUNCTION, Runtime="python3.11", Role=role,
                                           Handler="handler.handler", Code={"ZipFile": code.getvalue()})
        mappings = {}
        for name, event in self.template["Resources"][JOBS_FUNCTION]["Properties"]["Events"].items():
            if event["Type"] == "SQS":
                queue = event["Properties"]["Queue"].value.removesuffix(".Arn")
                stand_in = self.sqs.create_queue(QueueName=f"{queue}-mapped")["QueueUrl"]
                arn = self.sqs.get_queue_attributes(QueueUrl=stand_in, AttributeNames=["QueueArn"])
                mappings[JOBS_FUNCTION + name] = self.lambda_client.create_event_source_mapping(
                    EventSourceArn=arn["Attributes"]["QueueArn"], FunctionName=JOBS_FUNCTION,
                    BatchSize=event["Properties"].get("BatchSize", 10))["UUID"]
        return mappings

    def mapping_state(self, logical_id: str) -> str:
        return self.lambda_client.get_event_source_mapping(UUID=self.mappings[logical_id])["State"]

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
