"""JOB_TIMEOUT: the watchdog on real threads, and a job cut off on the real queue."""

import threading
import time

import pytest

from adapters.job_timeout import JobTimeout, JobWatchdog
from adapters.wiring import build_ports, configure_consumer
from local.runtime.consumer import watch_jobs
from tests.adapters.huey.steps import promote_due, slow, submit, work_one


@pytest.fixture
def checking():
    """Run watchdog checks every 50 ms, as the consumer's watchdog thread does."""
    stop = threading.Event()
    thread = threading.Thread(target=watch_jobs, args=([slow], stop, 0.05), daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=5)


def run_in_thread(target) -> dict:
    outcome = {}

    def body():
        started = time.monotonic()
        try:
            outcome["value"] = target()
        except BaseException as exc:  # what the thread saw is what the test checks
            outcome["error"] = exc
        outcome["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    return outcome


def busy_python(seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sum(range(100))
    return "finished"


def test_python_code_past_the_timeout_is_cut_off_and_a_quick_block_is_not():
    watchdog = JobWatchdog(timeout=0.3)
    stop = threading.Event()
    checker = threading.Thread(target=lambda: [watchdog.check() for _ in iter(lambda: stop.wait(0.02), True)])
    checker.start()
    try:
        quick = run_in_thread(lambda: _limited(watchdog, 0.05))
        slow = run_in_thread(lambda: _limited(watchdog, 5.0))
    finally:
        stop.set()
        checker.join(timeout=5)
    assert quick == {"value": "finished", "elapsed": quick["elapsed"]}
    assert isinstance(slow["error"], JobTimeout) and slow["elapsed"] < 2.0


def _limited(watchdog: JobWatchdog, seconds: float) -> str:
    with watchdog.limit():
        return busy_python(seconds)


def test_a_job_blocked_in_c_code_is_reported_stuck_once():
    reported = []
    watchdog = JobWatchdog(timeout=0.1, grace=0.2, on_stuck=reported.append)
    release = threading.Event()
    entered = threading.Event()

    def blocked():
        with watchdog.limit():
            entered.set()
            release.wait()  # a C-level lock wait: the JobTimeout cannot be delivered here

    thread = threading.Thread(target=lambda: reported.append(run_in_thread(blocked)))
    thread.start()
    assert entered.wait(5)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not reported:
        watchdog.check()
        time.sleep(0.02)
    for _ in range(5):
        watchdog.check()
    assert reported == [1]
    release.set()
    thread.join(timeout=5)
    assert isinstance(reported[1]["error"], JobTimeout)  # once unblocked, the attempt still fails


def test_a_job_past_job_timeout_fails_its_attempt_then_goes_to_the_dlq(settings, checking):
    configure_consumer(settings.model_copy(update={"job_timeout": 0.3}))
    ports = build_ports(settings)
    assert slow.watchdog.timeout == 0.3
    job_id = submit(ports, {"type": "sleep", "seconds": 30}, max_attempts=2)
    started = time.monotonic()
    work_one(slow)
    assert time.monotonic() - started < 3
    record = ports.jobs.get(job_id)
    assert record.state == "retrying" and record.attempts == 1 and "JOB_TIMEOUT" in record.lastError
    time.sleep(max(0.0, record.nextAttemptAt - time.time()) + 0.05)
    promote_due(on=slow)
    work_one(slow)
    record = ports.jobs.get(job_id)
    assert record.state == "dead" and record.attempts == 2
    assert ports.dlq.get(job_id).error.startswith("JobTimeout")
    assert ports.jobs.counts()["slow"]["active"] == 0
