"""The template's deployment for real: docker-compose.yml run by podman-compose (its Redis on the image
made from Debian's redis-server when redis:7-alpine cannot be pulled: deploy/compose/debian-redis.yml),
the template's walkthrough at its default retry delays, and `down` with a job running: every container
ends by itself with exit 0 inside its stop_grace_period, and the job is not lost. podman-compose stops
every service at once, Redis with the others (docker compose stops the API and the worker first), so the
job's completion cannot be written while Redis stops: it runs again once its lease (30 s) runs out after
the next `up`, at least once as always (docs/deploying.md says to stop the API and worker first)."""

import subprocess
import threading
import time

import pytest

from harness.processes import wait_until
from local.runtime.redis_server import free_port
from tests.deploy.podman import ENV, PREFIX, ROOT, healthy_after, podman
from tests.figures import report
from tests.walkthrough import Published, job_state, post, walkthrough

pytestmark = pytest.mark.slow
GRACE = 40  # docker-compose.yml's stop_grace_period for the API and the worker
PROJECT = f"{PREFIX}-compose"
SERVICES = ("redis", "api", "worker")


def compose(images, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    files = ["-f", str(ROOT / "docker-compose.yml")]
    if images["redis_base"] != "docker.io/library/redis:7-alpine":
        files += ["-f", str(ROOT / "deploy" / "compose" / "debian-redis.yml")]
    command = [str(ROOT / ".venv" / "bin" / "podman-compose"), "--project-name", PROJECT, *files, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


@pytest.fixture
def stack(images, monkeypatch):
    port = free_port()
    monkeypatch.setitem(ENV, "FORKLINE_PUBLISH", f"127.0.0.1:{port}")
    try:
        compose(images, "up", "--detach")
        yield Published(port)
    finally:
        compose(images, "down", "--volumes", "--timeout", "0")


def exit_codes_when_stopped(containers: list[str], into: dict[str, str]) -> list[threading.Thread]:
    """`podman wait` on each container from now on: its exit code once it stops (down removes it after)."""
    def wait(name: str) -> None:
        into[name] = podman("wait", name, timeout=GRACE + 30, check=False).stdout.strip()

    threads = [threading.Thread(target=wait, args=(name,), daemon=True) for name in containers]
    for thread in threads:
        thread.start()
    return threads


def test_compose_up_serves_the_walkthrough_and_down_stops_cleanly(images, stack):
    containers = {service: f"{PROJECT}_{service}_1" for service in SERVICES}
    for container in containers.values():  # each service's own healthcheck: the image's, or the compose file's
        healthy_after(container, 60)
    walkthrough(stack, dead_within=40, replay=False)  # the template's 2, 4 and 8 s before the DLQ
    slow = post(stack, {"type": "sleep", "seconds": 3})
    wait_until(lambda: job_state(stack, slow) == "active", 20, 0.05, "the slow job running")
    codes: dict[str, str] = {}
    waiters = exit_codes_when_stopped(list(containers.values()), codes)
    started = time.monotonic()
    compose(images, "down", timeout=GRACE + 60)
    took = time.monotonic() - started
    for thread in waiters:
        thread.join(timeout=30)
    assert codes == {name: "0" for name in containers.values()}
    assert took < GRACE  # every container ended by itself, none by the SIGKILL at its grace period
    compose(images, "up", "--detach")  # the job's record is in Redis's volume: kept by down without --volumes
    healthy_after(containers["api"], 60)
    wait_until(lambda: job_state(stack, slow) == "completed", 60, 0.2, "the interrupted job completed")
    report(f"compose: down with a 3 s job running in {took:.1f} s, every container exit 0; the job "
           f"completed after the next up, attempts {stack.request('GET', f'/jobs/{slow}')[2]['attempts']}")
