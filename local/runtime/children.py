"""What the supervisor knows of each child, and how a role backs off after failing at start."""

import time
from dataclasses import dataclass, field

from local.runtime.exits import BOOT_ERROR

BOOT_WINDOW = 2.0  # a child dying sooner than this counts as a boot failure
MAX_BACKOFF = 30.0


@dataclass
class Child:
    """One child process. Once `stopping`, it no longer counts among its role's live workers;
    a draining child (`deadline` set) is SIGKILLed if still alive at the deadline."""

    pid: int
    role: str
    born: float
    slot: int = -1
    stopping: bool = False
    cause: str = ""  # why it is draining
    drain_started: float = 0.0
    deadline: float = 0.0  # monotonic; 0 while it serves
    killed: bool = False

    def begin_drain(self, cause: str, grace: float) -> None:
        now = time.monotonic()
        self.stopping, self.cause = True, cause
        self.drain_started, self.deadline = now, now + grace

    def overdue(self, now: float) -> bool:
        return bool(self.deadline) and now >= self.deadline and not self.killed


@dataclass
class BootBackoff:
    """Per role: a child that fails at start delays the next one (0.5 s, 1 s, 2 s ... 30 s),
    so that a broken app never turns into a hot fork loop."""

    failures: dict[str, int] = field(default_factory=dict)
    not_before: dict[str, float] = field(default_factory=dict)

    def record(self, role: str, code: int, lived: float) -> float:
        """Note an unplanned death; the delay before the role's next start (0: it was not at start)."""
        if code != BOOT_ERROR and lived >= BOOT_WINDOW:
            self.failures[role] = 0
            return 0.0
        self.failures[role] = self.failures.get(role, 0) + 1
        delay = min(0.5 * 2 ** (self.failures[role] - 1), MAX_BACKOFF)
        self.not_before[role] = time.monotonic() + delay
        return delay

    def ready(self, role: str, now: float) -> bool:
        return now >= self.not_before.get(role, 0.0)

    def failing(self, role: str) -> bool:
        return bool(self.failures.get(role))
