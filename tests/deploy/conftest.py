"""The images `make image` builds, built once per test session (deploy/images/build.sh; the bases it
makes from Debian's packages stay in podman's storage between runs)."""

import subprocess
import time

import pytest

from tests.deploy.podman import ENV, ROOT, require_podman
from tests.figures import report


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """`name=value` lines of deploy/images/build.sh: python_base, redis_base, lambda_target, sizes."""
    require_podman()
    started = time.monotonic()
    result = subprocess.run(["sh", str(ROOT / "deploy" / "images" / "build.sh")], capture_output=True, text=True,
                            timeout=900, env=ENV)
    if result.returncode != 0:
        pytest.fail(f"deploy/images/build.sh exited {result.returncode}: {result.stderr[-3000:]}", pytrace=False)
    built = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    report(f"make image: {time.monotonic() - started:.1f} s; server image {built['server_size']}, "
           f"lambda image {built['lambda_size']} ({built['lambda_target']}); bases: "
           f"{built['python_base']}, {built['redis_base']}")
    require_podman(built["python_base"])
    return built

