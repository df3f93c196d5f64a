"""podman for the image tests: the project's settings (deploy/images/containers.conf), every command
bounded in time, every container the tests start named with this run's prefix and removed by name."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "images" / "containers.conf")}
PREFIX = f"forkline-test-{os.getpid()}"


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=ENV)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


def require_podman(image: str | None = None) -> None:
    """One clear line, not a stack of errors, where podman is missing or cannot run `image` here."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run `make test` (it installs podman, buildah, debootstrap, runc)",
                    pytrace=False)
    if image is None:
        return
    result = podman("run", "--rm", "--network", "none", image, "true", timeout=60, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no error output"])[-1]
        pytest.fail(f"podman cannot run containers on this machine: {last}", pytrace=False)


def inspect(container: str, template: str) -> str:
    return podman("inspect", "--format", template, container).stdout.strip()


def remove(*containers: str) -> None:
    podman("rm", "--force", "--time", "0", *containers, timeout=60, check=False)


def healthy_after(container: str, timeout: float) -> float:
    """Seconds until the image's HEALTHCHECK passes. podman runs a container's check from a systemd
    timer; with no systemd (these machines) nothing runs it, so this runs the same check on the same
    schedule podman would, through `podman healthcheck run`, which records the result."""
    started = time.monotonic()
    while True:
        if podman("healthcheck", "run", container, check=False, timeout=30).returncode == 0:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            logs = podman("logs", container, check=False).stderr[-2000:]
            raise AssertionError(f"{container} not healthy after {timeout} s: {logs}")
        time.sleep(0.2)
