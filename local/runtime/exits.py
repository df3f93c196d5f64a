"""Exit statuses shared by the supervisor and its children, and the supervisor's halt.

The children import these from here, not from the supervisor: no import cycle.
"""

import os
import signal

BOOT_ERROR = 3  # a child that could not start
RECYCLED = 4  # an HTTP worker that retired itself (WEB_MAX_REQUESTS, WEB_MAX_RSS_MB): replace it at once


class Halt(BaseException):
    """Stop the supervisor with `status`. A BaseException (as gunicorn's HaltServer) so that
    no `except Exception` on the way swallows it."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def describe_exit(status: int) -> tuple[int, str]:
    """(exit code, or minus the signal number; a cause for the log) from a waitpid status."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status), f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    code = os.WEXITSTATUS(status)
    return code, f"exited with status {code}"
