"""Where podman is missing or cannot run a container, the image tests stop with one clear line."""

import shutil

import pytest

from tests.deploy import podman as podman_module


def test_podman_missing_is_one_line(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception) as failed:
        podman_module.require_podman()
    assert str(failed.value).count("\n") == 0 and "podman is not installed" in str(failed.value)


def test_podman_that_cannot_run_a_container_is_one_line():
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run `make test`", pytrace=False)
    with pytest.raises(pytest.fail.Exception) as failed:
        podman_module.require_podman("localhost/forkline-test/no-such-image:none")
    assert str(failed.value).count("\n") == 0 and "podman cannot run containers" in str(failed.value)
