"""The boot backoff: a role whose children die at start waits 0.5 s, 1 s, 2 s, 4 s ... (at most 30 s)
before the next one; a child that lived past the 2 s boot window resets it."""

from local.runtime.children import BOOT_WINDOW, MAX_BACKOFF, BootBackoff
from local.runtime.exits import BOOT_ERROR


def test_failures_at_start_double_the_delay_up_to_the_cap():
    backoff = BootBackoff()
    delays = [backoff.record("web", 1, 0.1) for _ in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]
    assert MAX_BACKOFF == 30.0 and backoff.failing("web") and not backoff.failing("consumer")


def test_the_boot_window_is_two_seconds_and_a_child_that_lived_past_it_resets_the_backoff():
    backoff = BootBackoff()
    assert BOOT_WINDOW == 2.0
    assert backoff.record("web", 1, 1.9) == 0.5  # died inside the window: a boot failure
    assert backoff.record("web", 1, 1.9) == 1.0
    assert backoff.record("web", 1, BOOT_WINDOW) == 0.0  # lived its window: a crash, replaced at once
    assert not backoff.failing("web")
    assert backoff.record("web", 1, 0.2) == 0.5  # counting starts again


def test_a_boot_error_counts_however_long_the_child_lived():
    backoff = BootBackoff()
    assert backoff.record("consumer", BOOT_ERROR, 60.0) == 0.5
    assert backoff.record("consumer", BOOT_ERROR, 60.0) == 1.0


def test_a_role_is_not_ready_before_its_delay_and_roles_back_off_apart(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("local.runtime.children.time.monotonic", lambda: now[0])
    backoff = BootBackoff()
    backoff.record("web", 1, 0.1)
    backoff.record("web", 1, 0.1)  # 1 s from now
    assert not backoff.ready("web", 1000.99) and backoff.ready("web", 1001.0)
    assert backoff.ready("consumer", 1000.0)
