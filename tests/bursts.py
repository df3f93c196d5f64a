"""Clients posting jobs to a running forkline until told to stop, for the fault tests (a hung Redis, a
failover): every answer recorded with when it was sent and answered; status 0 when none came."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.processes import Forkline


@dataclass(frozen=True)
class Answer:
    sent: float
    answered: float
    status: int
    headers: dict
    body: Any  # the parsed answer, or the client's error (repr) when none came

    @property
    def seconds(self) -> float:
        return self.answered - self.sent


class PostBurst:
    """`senders` threads, each POSTing `body(n)` for n = 1, 2, ... until `stop()`."""

    def __init__(self, api: Forkline, senders: int, body: Callable[[int], dict] = lambda n: {"message": f"m{n}"},
                 timeout: float = 20.0):
        self.api, self.body, self.timeout = api, body, timeout
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post, daemon=True) for _ in range(senders)]

    def _post(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            sent = time.monotonic()
            try:
                status, headers, body = self.api.request("POST", "/jobs", self.body(n), timeout=self.timeout)
            except OSError as exc:
                status, headers, body = 0, {}, repr(exc)
            self.answers.append(Answer(sent, time.monotonic(), status, headers, body))

    def start(self) -> "PostBurst":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(self.timeout + 10)

    def count(self, status: int, sent_after: float = float("-inf")) -> int:
        return sum(a.status == status and a.sent > sent_after for a in self.answers)

    def accepted(self) -> list[str]:
        return [a.body["jobId"] for a in self.answers if a.status == 202]
