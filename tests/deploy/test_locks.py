"""Every Python dependency comes from a lock with hashes, and the locks follow pyproject.toml.

uv.lock (the project), locks/template-tools/uv.lock (cfn-lint, aws-sam-translator) and
locks/bootstrap.txt (uv and setuptools, exported from uv.lock for the first `pip install`).
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".venv-uv" / "bin" / "uv"
TOOLS_PROJECT = ROOT / "locks" / "template-tools"
# The files whose commands install something: each install must name its lock, or install with --no-deps.
INSTALLERS = ["Makefile", "Dockerfile", ".ci/run"]


def uv(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    assert UV.exists(), "run `make install`: it creates .venv-uv from locks/bootstrap.txt"
    return subprocess.run([str(UV), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("project", [ROOT, TOOLS_PROJECT], ids=["forkline", "template-tools"])
def test_the_lock_follows_its_pyproject(project):
    result = uv("lock", "--check", cwd=project)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("edit", [
    ('"orjson>=3.13.0",', '"orjson>=3.13.0",\n    "six>=1.16",'),  # a new dependency
    ('"falcon>=4.4.0,<5"', '"falcon>=4.4.0,<4.4.1"'),  # a bound changed, even one the lock still meets
], ids=["added", "bound-changed"])
def test_a_pyproject_edit_the_lock_does_not_follow_is_caught(tmp_path, edit):
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy2(ROOT / name, tmp_path / name)
    text = (tmp_path / "pyproject.toml").read_text()
    assert edit[0] in text
    (tmp_path / "pyproject.toml").write_text(text.replace(edit[0], edit[1]))
    result = uv("lock", "--check", cwd=tmp_path)
    assert result.returncode != 0 and "needs to be updated" in result.stderr, result.stderr


def test_the_bootstrap_pins_are_the_lock_s_with_hashes(tmp_path):
    exported = tmp_path / "bootstrap.txt"
    result = uv("export", "--quiet", "--frozen", "--only-group", "bootstrap", "--no-emit-project", "-o", str(exported))
    assert result.returncode == 0, result.stderr

    def requirements(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines() if not line.startswith("#")]

    pinned = requirements(ROOT / "locks" / "bootstrap.txt")
    assert pinned == requirements(exported), "run `make lock` (it exports locks/bootstrap.txt from uv.lock)"
    assert {line.split("==")[0] for line in pinned if "==" in line} == {"uv", "setuptools"}
    assert all(line.startswith("    --hash=sha256:") for line in pinned if "==" not in line)


def commands(text: str) -> list[str]:
    """Shell commands, continuation lines joined, split at && and ;."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [part.strip() for line in joined.splitlines() for part in re.split(r"&&|;", line)]


def test_no_install_step_resolves_a_version():
    """pip installs a hashed lock or a thing with --no-deps; pip builds without fetching a backend;
    uv installs only what its lock names."""
    seen = 0
    for name in INSTALLERS:
        for command in commands((ROOT / name).read_text()):
            if re.search(r"\bpip (install|wheel)\b", command):
                seen += 1
                assert "--require-hashes" in command or "--no-deps" in command, f"{name}: {command}"
                assert "--upgrade" not in command, f"{name}: {command}"
                if " wheel " in command or re.search(r"install .* \.$", command):
                    assert "--no-build-isolation" in command, f"{name}: {command}"
            if re.search(r"\buv\)? (sync|export|run)\b", command):
                seen += 1
                assert "--frozen" in command, f"{name}: {command}"
    assert seen >= 7  # the Makefile's three, the Dockerfile's four (and the lambda stage's two)
