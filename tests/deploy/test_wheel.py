"""The wheel, as the container image installs it: the locked dependencies from `uv export` with
hashes, then the wheel built with `pip wheel --no-build-isolation` and installed with `--no-deps`
(nothing resolved), into a fresh virtual environment outside the checkout, run as a non-root user
against a test Redis.

Catches what the wheel leaves out (the Lua scripts, anything read at run time) and any
import of the checkout (tests/, bench/) from the package.
"""

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from adapters.redis import scripts
from harness.processes import ROOT, request, stop_pid, wait_until
from local.runtime.redis_server import free_port

USER, GROUP = "nobody", "nogroup"
# The venv's interpreter must be one the non-root user can run: the development Python may live
# under /root (pyenv), which that user cannot read. Debian's own Python is at /usr/bin.
SYSTEM_PYTHON = "/usr/bin/python3"
# The Dockerfile's build stage in miniature: a venv with only locks/bootstrap.txt (uv, setuptools) in it.
BOOTSTRAP = ROOT / ".venv-uv" / "bin"


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def installed():
    """(the venv, a work directory owned by the non-root user) in a fresh directory under /tmp."""
    base = Path(tempfile.mkdtemp(prefix="forkline-wheel-"))
    base.chmod(0o755)  # the non-root user must reach the venv
    # What the Dockerfile copies, and nothing else (no stale build/ or egg-info of the checkout).
    source = base / "src"
    source.mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md", "template.yaml"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("functions", "adapters", "local"):
        # Links stay links, as Docker's COPY keeps them (local/cloud_emulation/template.yaml -> ../../template.yaml).
        shutil.copytree(ROOT / package, source / package, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    dist = base / "dist"
    assert (BOOTSTRAP / "uv").exists(), "run `make install`: it creates .venv-uv from locks/bootstrap.txt"
    run([str(BOOTSTRAP / "uv"), "export", "--quiet", "--frozen", "--no-default-groups", "--no-emit-project",
         "-o", str(dist / "requirements.txt")], cwd=source)
    run([str(BOOTSTRAP / "python"), "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(source)])
    [wheel] = dist.glob("forkline-*.whl")
    venv = base / "venv"
    assert os.access(SYSTEM_PYTHON, os.X_OK), f"{SYSTEM_PYTHON} is needed to build a venv any user can run"
    run([SYSTEM_PYTHON, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--no-cache-dir", "--no-deps"]
    run(pip + ["--require-hashes", "-r", str(dist / "requirements.txt")])
    run(pip + [str(wheel)])
    run([str(venv / "bin" / "pip"), "check"])  # every dependency of every package is there
    work = base / "work"
    work.mkdir()
    shutil.chown(work, USER, GROUP)
    yield venv, work
    shutil.rmtree(base, ignore_errors=True)


def test_the_wheel_carries_the_package_and_its_data_and_nothing_of_the_checkout(installed):
    venv, work = installed
    probe = ("import adapters.redis.scripts as s, local.commands.cli, importlib.util as u; print(s.__file__); "
             "print(len(s.ALL), u.find_spec('tests'), u.find_spec('bench'), u.find_spec('harness')); "
             "import adapters.http.dashboard as d; print(sorted(d.DashboardResource().assets)); "
             "from local.cloud_emulation.cloud_template import template_path as t; "
             "print(t().is_symlink(), len(t().read_text()))")
    out = run([str(venv / "bin" / "python"), "-c", probe], cwd=work, env={"PATH": "/usr/bin:/bin"}).stdout.split("\n")
    assert out[0].startswith(str(venv)), out  # the installed copy, not the checkout
    assert out[1] == f"{len(scripts.ALL)} None None None", out  # every Lua script loads from the wheel
    assert out[2] == "['dashboard.css', 'dashboard.js', 'index.html']", out  # and the dashboard's files
    assert out[3] == f"False {len((ROOT / 'template.yaml').read_text())}", out  # and the template, as a file


@pytest.mark.slow
def test_serve_and_worker_from_the_wheel_as_a_non_root_user(installed, redis_url):
    venv, work = installed
    port = free_port()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(work), "PORT": str(port), "HOST": "127.0.0.1",
           "REDIS_URL": redis_url, "WEB_CONCURRENCY": "1", "LOG_DIR": str(work / "logs"),
           "DATA_DIR": str(work / "data"), "GRACEFUL_TIMEOUT": "5"}
    as_user = ["setpriv", f"--reuid={USER}", f"--regid={GROUP}", "--clear-groups"]
    out = open(work.parent / "forkline.out", "wb")
    serve = subprocess.Popen(as_user + [str(venv / "bin" / "forkline"), "serve"], cwd=work, env=env,
                             stdout=out, stderr=subprocess.STDOUT)
    worker = subprocess.Popen(as_user + [str(venv / "bin" / "forkline"), "worker"], cwd=work, env=env,
                              stdout=out, stderr=subprocess.STDOUT)
    try:
        def healthy() -> bool:
            assert serve.poll() is None and worker.poll() is None, (work.parent / "forkline.out").read_text()
            try:
                return request(port, "GET", "/health", timeout=1)[0] == 200
            except OSError:
                return False

        wait_until(healthy, 30, 0.1, "forkline serve from the wheel")
        for pid in (serve.pid, worker.pid):
            uid = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("Uid:"))
            assert uid.split()[1] == str(65534), uid
        status, _, accepted = request(port, "POST", "/jobs", {"message": "from the wheel"})
        assert status == 202, accepted
        job_id = accepted["jobId"]
        wait_until(lambda: request(port, "GET", f"/jobs/{job_id}")[2].get("state") == "completed", 20, 0.1,
                   "the job completed by the wheel's worker")
        assert request(port, "GET", f"/jobs/{job_id}")[2]["result"] == {"processed": "from the wheel"}
        assert any((work / "logs").glob("forkline-*.log"))  # the non-root user could write its logs
    finally:
        codes = [stop_pid(proc, signal.SIGTERM, timeout=20) for proc in (worker, serve)]
        out.close()
    assert codes == [0, 0], (work.parent / "forkline.out").read_text()[-3000:]
