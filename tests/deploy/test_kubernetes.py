"""deploy/kubernetes/: rendered by `kubectl kustomize` (the image named once, in kustomization.yaml),
every manifest validates offline against Kubernetes' own schemas (kubernetes-validate ships them), and
every command, port, probe path, variable and metric the manifests name exists in forkline."""

import functools
import shutil
import subprocess
from pathlib import Path

import falcon.testing
import kubernetes_validate
import pytest
import yaml

from adapters.http.app import create_app
from adapters.metrics import PrometheusMetrics
from adapters.settings import Settings
from functions.jobs import declared_queues
from local.commands.cli import parser
from tests.fakes import MemoryDLQ, MemoryQueue, fake_deps

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "deploy" / "kubernetes"
KUBERNETES = "1.31.0"
KUSTOMIZATION = FOLDER / "kustomization.yaml"
# values: Helm's
MANIFESTS = sorted(p for p in FOLDER.glob("*.yaml") if not p.name.endswith("-values.yaml") and p != KUSTOMIZATION)


@functools.cache
def rendered() -> str:
    """`kubectl kustomize deploy/kubernetes`: what `kubectl apply -k` sends."""
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not installed: run `make test` (it installs Debian's kubernetes-client)",
                    pytrace=False)
    result = subprocess.run(["kubectl", "kustomize", str(FOLDER)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def documents() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(rendered()) if doc]


def of_kind(kind: str) -> list[dict]:
    return [doc for doc in documents() if doc["kind"] == kind]


def containers() -> list[tuple[dict, dict]]:
    return [(d, c) for d in of_kind("Deployment") for c in d["spec"]["template"]["spec"]["containers"]]


def test_each_rendered_manifest_validates_strictly_against_the_kubernetes_schemas():
    kinds = set()
    for doc in documents():
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)  # raises on any unknown or missing field
        kinds.add(doc["kind"])
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler"} <= kinds


def test_the_image_is_named_once_and_every_manifest_is_rendered():
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)  # none left out
    [image] = kustomization["images"]
    for path in MANIFESTS:  # each manifest names the placeholder only: the real name lives in one place
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "Deployment":
                assert {c["image"] for c in doc["spec"]["template"]["spec"]["containers"]} == {image["name"]}
    assert containers() and {c["image"] for _, c in containers()} == {f"{image['newName']}:{image['newTag']}"}


def test_an_invalid_manifest_is_caught():
    [api] = [d for d in of_kind("Deployment") if d["metadata"]["name"] == "forkline-api"]
    api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/health"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, KUBERNETES, strict=True)


def test_every_command_is_a_forkline_command_with_its_options():
    for _, container in containers():
        program, *argv = container["command"]
        assert program == "forkline"
        parser().parse_args(argv)  # exits (status 2) on an unknown command or option


def test_a_consumer_deployment_for_each_declared_queue():
    served = []
    for _, container in containers():
        args = parser().parse_args(container["command"][1:])
        if args.command == "worker":
            served.append(args.queues)
    assert sorted(served) == sorted(declared_queues())


def test_every_variable_is_a_setting():
    names = {f.upper() for f in Settings.model_fields}
    for doc in of_kind("ConfigMap") + of_kind("Secret"):
        values = doc.get("data") or doc.get("stringData")
        assert set(values) <= names, set(values) - names
        Settings(**{k.lower(): v for k, v in values.items()}, _env_file=None)  # each value is valid
    for _, container in containers():
        assert {e["name"] for e in container.get("env", [])} <= names


def test_ports_and_probe_paths_exist():
    app = falcon.testing.TestClient(create_app(fake_deps(jobs=MemoryQueue(), dlq=MemoryDLQ())))
    defaults = Settings(_env_file=None)
    for _, container in containers():
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in container:
                continue
            get = container[probe]["httpGet"]
            port = ports[get["port"]]
            if container["command"][1] == "serve":
                assert port == int(env.get("PORT") or defaults.port)
                assert app.simulate_get(get["path"]).status_code == 200, get["path"]
            else:  # a worker's only HTTP server: its metrics
                assert port == int(env.get("METRICS_PORT") or defaults.metrics_port) and get["path"] == "/metrics"


def test_the_api_drains_within_its_termination_grace_period():
    [config] = of_kind("ConfigMap")
    graceful = float(config["data"]["GRACEFUL_TIMEOUT"])
    for deployment, container in containers():
        spec = deployment["spec"]["template"]["spec"]
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", ["sleep", "0"])
        assert pre_stop[0] == "sleep"
        assert spec["terminationGracePeriodSeconds"] > float(pre_stop[1]) + graceful
    [api] = [c for _, c in containers() if c["command"][1] == "serve"]
    [concurrency] = [e for e in api["env"] if e["name"] == "WEB_CONCURRENCY"]
    assert concurrency["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"
    # os.cpu_count() in a pod is the node's, not the limit's: every worker sizes its processes from the limit.
    for _, container in containers():
        if container["command"][1] == "worker":
            [processes] = [e for e in container["env"] if e["name"] == "CONSUMER_PROCESSES"]
            assert processes["valueFrom"]["resourceFieldRef"] == {
                "containerName": container["name"], "resource": "limits.cpu", "divisor": "1"}


def test_autoscalers_target_real_deployments_and_forkline_metrics():
    deployments = {d["metadata"]["name"] for d in of_kind("Deployment")}
    exposition = PrometheusMetrics(MemoryQueue(), MemoryDLQ()).render()[1].decode()
    for hpa in of_kind("HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] == "External":
                labels = metric["external"]["metric"]["selector"]["matchLabels"]
                series = metric["external"]["metric"]["name"] + "{" + ",".join(
                    f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
                assert series in exposition, series
    for pdb in of_kind("PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
                   for d in of_kind("Deployment"))
