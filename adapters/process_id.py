"""This process's id without a system call (glibc no longer caches getpid()): the hot paths, each
Redis call and each request id, ask for it to notice that they run in a forked child."""

import os

_PID = [os.getpid()]


def _forked() -> None:
    _PID[0] = os.getpid()


os.register_at_fork(after_in_child=_forked)


def current_pid() -> int:
    """os.getpid(), as of the last fork (os.fork and what calls it: the supervisor, multiprocessing)."""
    return _PID[0]
