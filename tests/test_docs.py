"""The README and the manual (docs/, built by MkDocs) stay true: the site builds with --strict, every
test they cite exists, no file of the repository is pasted into them, and `.env.example` shows the
defaults it says it shows."""

import ast
import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from adapters.settings import Settings
from harness.processes import ROOT

PAGES = [ROOT / "README.md", ROOT / "bench" / "RESULTS.md", *sorted((ROOT / "docs").glob("*.md"))]
# Files a page might be tempted to copy: each must be included (--8<-- "path"), never pasted.
CONFIG_FILES = [ROOT / name for name in (".env.example", "Dockerfile", "docker-compose.yml", "template.yaml",
                                         "Makefile", "mkdocs.yml", "pyproject.toml")]
CONFIG_FILES += sorted(p for p in (ROOT / "deploy").rglob("*") if p.is_file())
CITED_FILE = re.compile(r"\btests/[\w/]+\.py(?:::\w+)?")
CITED_NAME = re.compile(r"`(test_\w+)(?:\[[^\]`]*\])?`")


def test_the_manual_builds_with_strict_checks(tmp_path):
    """Broken links, pages missing from the nav and included files that do not exist all fail."""
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "mkdocs"), "build", "--strict", "--site-dir",
                             str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "proxy_pass" in (tmp_path / "site" / "limits-and-proxies" / "index.html").read_text()  # included


@cache
def defined_functions(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(), str(path))
    return frozenset(node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


def every_test_function() -> set[str]:
    return {name for path in (ROOT / "tests").rglob("*.py") for name in defined_functions(path)}


def citations(text: str) -> list[str]:
    return CITED_FILE.findall(text) + [m.group(1) for m in CITED_NAME.finditer(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_test_a_page_cites_exists(page):
    known = every_test_function()
    missing = []
    for cited in citations(page.read_text()):
        path, _, name = cited.partition("::") if cited.startswith("tests/") else ("", "", cited)
        if path and not (ROOT / path).is_file():
            missing.append(cited)
        elif name and name not in (defined_functions(ROOT / path) if path else known):
            missing.append(cited)
    assert missing == []


def test_the_citation_check_sees_a_file_and_a_function_that_do_not_exist():
    text = ("see `tests/e2e/test_run.py::test_no_such_thing` and `tests/nowhere/test_gone.py`, "
            "and `test_jobs_complete_fail_into_the_dlq_and_replay`")
    found = citations(text)
    assert found == ["tests/e2e/test_run.py::test_no_such_thing", "tests/nowhere/test_gone.py",
                     "test_jobs_complete_fail_into_the_dlq_and_replay"]
    assert "test_no_such_thing" not in defined_functions(ROOT / "tests/e2e/test_run.py")


def code_blocks(text: str) -> list[list[str]]:
    blocks, current = [], None
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line.strip())
    return blocks


def contains_run(haystack: list[str], needle: list[str]) -> bool:
    return any(haystack[i:i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_pastes_a_file_of_the_repository(page):
    """A code block of three lines or more that a configuration file holds line for line is a copy."""
    files = {path: [line.strip() for line in path.read_text().splitlines()] for path in CONFIG_FILES}
    for block in code_blocks(page.read_text()):
        lines = [line for line in block if line]
        if len(lines) < 3:
            continue
        copied = [str(path.relative_to(ROOT)) for path, held in files.items() if contains_run(held, lines[:3])]
        assert copied == [], f"{page.name} pastes {copied}: include it with --8<-- instead\n" + "\n".join(lines[:3])


def test_the_readme_is_the_short_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    first = code_blocks(text)[0]
    assert first[0].startswith("make run") and first[1].startswith("make test")
    assert text.index("## A first request") < text.index("## Commands")


def test_env_example_shows_the_defaults(monkeypatch):
    """It says 'Defaults shown': every value it sets is the default (it once set CONSUMER_PROCESSES=1)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    assert Settings(_env_file=ROOT / ".env.example") == Settings(_env_file=None)
