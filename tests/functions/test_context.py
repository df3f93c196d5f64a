"""The job context: progress throttled and flushed, a logger bound to the job, functions without it
called as before."""

import logging

import pytest

from functions.context import PROGRESS_INTERVAL, JobContext
from functions.jobs import JOB_TYPES, run_job


class Recorded:
    def __init__(self):
        self.writes = []

    def progress(self, job_id, fraction, note):
        self.writes.append((job_id, fraction, note))


def context(clock):
    return JobContext("default.j1", 2, "default", "sleep", Recorded(), clock)


def test_progress_is_written_at_most_once_per_interval_and_the_last_report_on_flush():
    now = [100.0]
    ctx = context(lambda: now[0])
    for step in range(10):  # ten reports within one interval
        ctx.progress(step / 10, f"step {step}")
        now[0] += PROGRESS_INTERVAL / 10
    assert ctx.store.writes == [("default.j1", 0.0, "step 0")]
    now[0] += PROGRESS_INTERVAL
    ctx.progress(0.95)
    assert ctx.store.writes[-1] == ("default.j1", 0.95, "")
    ctx.progress(0.99, "x" * 500)  # held back by the throttle
    assert len(ctx.store.writes) == 2
    ctx.flush()
    assert ctx.store.writes[-1] == ("default.j1", 0.99, "x" * 200)  # the note cut to 200 characters
    ctx.flush()
    assert len(ctx.store.writes) == 3  # nothing held: nothing written


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
def test_a_fraction_outside_0_to_1_is_refused(fraction):
    ctx = context(lambda: 0.0)
    with pytest.raises(ValueError):
        ctx.progress(fraction)
    assert ctx.store.writes == []


def test_the_logger_carries_the_job(caplog):
    ctx = context(lambda: 0.0)
    with caplog.at_level(logging.INFO, logger="forkline.job"):
        ctx.log.info("halfway", extra={"rows": 5})
    record = caplog.records[-1]
    assert (record.jobId, record.type, record.queue, record.attempt, record.rows) == ("default.j1", "sleep",
                                                                                      "default", 2, 5)


def test_a_function_without_a_context_is_called_with_its_payload_alone():
    assert not JOB_TYPES["message"].takes_context and JOB_TYPES["sleep"].takes_context
    assert run_job("message", {"message": "hi", "shouldFail": False}) == {"processed": "hi"}
    ctx = context(lambda: 0.0)
    assert run_job("sleep", {"seconds": 0.01}, ctx) == {"slept": 0.01}
    assert ctx.store.writes[-1][1] == 1.0  # flushed when it returned
    with pytest.raises(RuntimeError):
        run_job("sleep", {"seconds": 0.01})
