"""The server image (`make image`, tagged forkline:server) under test: an API container and a worker
container (`forkline serve`, `forkline worker`) against a Redis container on a podman network; the
template's walkthrough through the published port, the non-root user, the image's HEALTHCHECK, and a
stop with a slow job running that ends with exit 0 and loses nothing."""

import time
from dataclasses import dataclass

import pytest

from harness.processes import wait_until
from local.runtime.redis_server import free_port
from tests.deploy.podman import PREFIX, healthy_after, inspect, podman, remove
from tests.figures import report
from tests.walkthrough import Published, job_state, post, walkthrough

pytestmark = pytest.mark.slow
STOP_TIMEOUT = 40  # above GRACEFUL_TIMEOUT (30 s): a stop waits for running jobs, as docker-compose.yml's does


@dataclass
class Deployment:
    api: str
    worker: str
    api_url: Published
    started: float


@pytest.fixture
def deployment(images):
    network, redis, api, worker = (f"{PREFIX}-{part}" for part in ("net", "redis", "api", "worker"))
    port = free_port()
    podman("network", "create", network)
    try:
        podman("run", "--detach", "--name", redis, "--network", network, images["redis_base"],
               "redis-server", "--appendonly", "yes")
        env = ["--env", f"REDIS_URL=redis://{redis}:6379/0", "--env", "JOB_BACKOFF_BASE=0.2"]
        started = time.monotonic()
        podman("run", "--detach", "--name", api, "--network", network, "--publish", f"127.0.0.1:{port}:3000", *env,
               "forkline:server")
        podman("run", "--detach", "--name", worker, "--network", network, *env, "forkline:server",
               "forkline", "worker")
        yield Deployment(api, worker, Published(port), started)
    finally:
        remove(api, worker, redis)
        podman("network", "rm", "--force", network, check=False)


def test_the_walkthrough_on_the_images_with_the_healthcheck_passing(deployment):
    assert "livez" in inspect(deployment.api, "{{json .Config.Healthcheck}}")  # kept: built with --format docker
    healthy_after(deployment.api, 60)
    report(f"server image: `podman run` to healthy in {time.monotonic() - deployment.started:.1f} s")
    assert inspect(deployment.api, "{{.State.Health.Status}}") == "healthy"
    walkthrough(deployment.api_url)


def test_both_containers_run_as_the_non_root_user(deployment):
    for container in (deployment.api, deployment.worker):
        assert inspect(container, "{{.Config.User}}") == "forkline"
        status = podman("exec", container, "cat", "/proc/1/status").stdout  # the server itself, PID 1
        assert "Uid:\t10001\t10001\t10001\t10001" in status, status


def test_a_stop_with_a_slow_job_running_waits_for_it_and_exits_0(deployment):
    healthy_after(deployment.api, 60)
    slow = post(deployment.api_url, {"type": "sleep", "seconds": 4})
    wait_until(lambda: job_state(deployment.api_url, slow) == "active", 20, 0.05, "the slow job running")
    started = time.monotonic()
    podman("stop", "--time", str(STOP_TIMEOUT), deployment.worker, timeout=STOP_TIMEOUT + 20)
    worker_stop = time.monotonic() - started
    assert inspect(deployment.worker, "{{.State.ExitCode}}") == "0"
    assert worker_stop < STOP_TIMEOUT  # ended by itself, not by the SIGKILL at the timeout
    assert job_state(deployment.api_url, slow) == "completed"  # finished during the stop: nothing lost
    started = time.monotonic()
    podman("stop", "--time", str(STOP_TIMEOUT), deployment.api, timeout=STOP_TIMEOUT + 20)
    api_stop = time.monotonic() - started
    assert inspect(deployment.api, "{{.State.ExitCode}}") == "0"
    report(f"server image: stop with a 4 s job running: worker {worker_stop:.1f} s, API {api_stop:.1f} s, "
           "both exit 0")
