"""The process helpers the tests and the bench scripts stop and watch processes with."""

import signal
import subprocess

from harness.processes import is_gone, stop_pid, wait_until


def test_is_gone_sees_a_running_process_a_zombie_and_a_reaped_one():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert not is_gone(proc.pid)
        proc.send_signal(signal.SIGKILL)
        wait_until(lambda: is_gone(proc.pid), 5, 0.02, "the killed child, not yet reaped, to count as gone")
        assert open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"  # still a zombie
        proc.wait(5)
        assert is_gone(proc.pid)  # reaped: no /proc entry left to read
    finally:
        stop_pid(proc, signal.SIGKILL, timeout=5)
