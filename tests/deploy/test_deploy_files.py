"""template.yaml, Dockerfile and docker-compose.yml name only things that exist (no Docker engine here)."""

import importlib
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from adapters.aws.job_items import TTL_ATTRIBUTE
from local.cloud_emulation.cloud_template import evaluate, yaml_load

ROOT = Path(__file__).resolve().parents[2]
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"


def check_template(path: Path) -> subprocess.CompletedProcess:
    if not TOOLS_PYTHON.exists():
        pytest.fail("the template tools are missing: run `make test` (it creates .venv-tools)")
    return subprocess.run([str(TOOLS_PYTHON), str(ROOT / "tests" / "template_check.py"), str(path)],
                          capture_output=True, text=True, timeout=300)


def test_template_passes_cfn_lint_and_sam_translation():
    result = check_template(ROOT / "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("old, new, finding", [
    ("Queue: !GetAtt JobsQueue.Arn", "Queue: !GetAtt JobsQeueu.Arn", "JobsQeueu"),
    ("ImageUri: !Ref ImageUri\n", "\n", "ImageUri"),
    ("FunctionResponseTypes:", "FunctionResponseType:", "FunctionResponseType"),
    ("VisibilityTimeout: 180", "VisibilityTimeout: 10", "isibility"),
])
def test_a_broken_template_fails(tmp_path, old, new, finding):
    text = (ROOT / "template.yaml").read_text()
    assert old in text
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace(old, new, 1))
    result = check_template(broken)
    assert result.returncode != 0 and finding in result.stdout, result.stdout


def handler(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_template_handlers_import_and_redrive_matches_retries():
    template = yaml_load(ROOT / "template.yaml")
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert {tuple(f["Properties"]["ImageConfig"]["Command"]) for f in functions.values()} == {
        ("adapters.aws_lambda.http_handler",), ("adapters.aws_lambda.jobs_handler",)}
    for spec in functions.values():
        assert callable(handler(spec["Properties"]["ImageConfig"]["Command"][0]))
        assert spec["Metadata"]["DockerBuildTarget"] == "lambda"
        assert (ROOT / spec["Metadata"]["Dockerfile"]).exists()
    queue = template["Resources"]["JobsQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * template["Globals"]["Function"]["Timeout"]
    from adapters.settings import Settings

    retries = template["Parameters"]["JobMaxRetries"]["Default"]
    assert retries == Settings(_env_file=None).job_max_retries
    # The jobs function gets JOB_MAX_RETRIES from the same parameter, so redrive and retries agree.
    assert evaluate(template["Globals"]["Function"]["Environment"]["Variables"]["JOB_MAX_RETRIES"], template) == retries
    redrive = queue["RedrivePolicy"]
    target = redrive["deadLetterTargetArn"]
    assert (target.name, target.value) == ("GetAtt", "JobsDeadLetterQueue.Arn")
    assert int(evaluate(redrive["maxReceiveCount"], template)) == 1 + retries
    parameter = template["Parameters"]["JobMaxRetries"]
    for other in range(parameter["MinValue"], parameter["MaxValue"] + 1):  # every value a deploy may choose
        assert int(evaluate(redrive["maxReceiveCount"], template, {"JobMaxRetries": other})) == 1 + other


def test_dockerfile_names_existing_things():
    text = (ROOT / "Dockerfile").read_text()
    targets = re.findall(r"^FROM \S+ AS (\w+)", text, re.M)
    assert {"build", "server", "lambda"} <= set(targets)
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for name in src.split():
            assert (ROOT / name).exists(), name
    assert "USER forkline" in text
    commands = re.findall(r'^CMD \[(.+)\]$', text, re.M)
    assert '"forkline", "serve"' in commands[0]
    assert callable(handler(commands[1].strip('"')))
    from local.commands.cli import COMMANDS

    assert {"serve", "worker"} <= set(COMMANDS)


def test_compose_runs_redis_api_and_worker():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "--appendonly" in services["redis"]["command"]
    assert services["api"]["command"] == ["forkline", "serve"]
    assert services["worker"]["command"] == ["forkline", "worker"]
    for name in ("api", "worker"):
        assert services[name]["build"]["target"] == "server"
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://redis:")


def test_the_template_declares_the_job_table_as_the_store_expects():
    template = yaml_load(ROOT / "template.yaml")
    table = template["Resources"]["JobsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert (env["JOB_STORE"], env["JOBS_TABLE"].name, env["JOBS_TABLE"].value) == ("dynamodb", "Ref", "JobsTable")


def test_every_named_queue_has_its_sqs_queue_trigger_and_pause_switch_in_the_template():
    """One SQS queue per declared queue, redriven to the DLQ after as many receives as JobsQueue, read
    by its own event source of the jobs function, named in JOBS_SQS_QUEUE_URLS (JOBS_SQS_QUEUE_URL
    for `default`) and in JOBS_EVENT_SOURCES (what pausing it disables)."""
    from functions.jobs import declared_queues

    template = yaml_load(ROOT / "template.yaml")
    names = {"JobsFunction" + event: "" for event in template["Resources"]["JobsFunction"]["Properties"]["Events"]}
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    urls = dict(item.split("=") for item in evaluate(env["JOBS_SQS_QUEUE_URLS"], template, {
        name: name for name in template["Resources"]}).split(","))
    urls["default"] = env["JOBS_SQS_QUEUE_URL"].value
    assert set(urls) == set(declared_queues())
    events = {event["Properties"]["Queue"].value.removesuffix(".Arn"): name for name, event in
              template["Resources"]["JobsFunction"]["Properties"]["Events"].items() if event["Type"] == "SQS"}
    assert set(events) == set(urls.values())
    mappings = dict(item.split("=") for item in evaluate(
        template["Resources"]["HttpFunction"]["Properties"]["Environment"]["Variables"]["JOBS_EVENT_SOURCES"],
        template, {name: name for name in names}).split(","))
    assert mappings == {queue: "JobsFunction" + events[resource] for queue, resource in urls.items()}
    default_redrive = template["Resources"]["JobsQueue"]["Properties"]["RedrivePolicy"]
    for resource in urls.values():
        redrive = template["Resources"][resource]["Properties"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"].value == "JobsDeadLetterQueue.Arn"
        assert evaluate(redrive["maxReceiveCount"], template) == evaluate(default_redrive["maxReceiveCount"], template)
    # ... and in both functions' permission statements: the HTTP function sends to it and pauses its
    # trigger; the jobs function's role receives, deletes and re-times its messages.
    for resource in urls.values():
        assert {"sqs:SendMessage"} <= granted(template, "HttpFunction", f"{resource}.Arn"), resource
        assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"} <= granted(
            template, "JobsFunction", f"{resource}.Arn"), resource
        assert {"lambda:UpdateEventSourceMapping"} <= granted(
            template, "HttpFunction", f"event-source-mapping:${{JobsFunction{events[resource]}}}"), resource


def granted(template: dict, function: str, target: str) -> set[str]:
    """The actions `function`'s statements allow on `target` (a GetAtt like `JobsQueue.Arn`, or the
    tail of a !Sub ARN)."""
    actions: set[str] = set()
    for statement in template["Resources"][function]["Properties"]["Policies"][0]["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        names = [getattr(r, "value", r) for r in resources]
        if any(name == target or (isinstance(name, str) and name.endswith(target)) for name in names):
            actions |= set(statement["Action"])
    return actions


def test_the_wheels_template_is_a_link_to_the_one_template():
    """`forkline run --cloud` reads local/cloud_emulation/template.yaml: a link, so it cannot drift."""
    shipped = ROOT / "local" / "cloud_emulation" / "template.yaml"
    assert shipped.is_symlink() and shipped.resolve() == (ROOT / "template.yaml").resolve()
