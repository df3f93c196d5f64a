"""What one consumer thread does, step by step, for tests of the queue on a real Redis."""

import time

from adapters.huey.tasks import huey
from functions import routes


def submit(ports, body, max_attempts=4):
    return routes.submit_job(body, ports.jobs, lambda: f"job-{time.monotonic_ns()}", time.time(), max_attempts)[0].jobId


def work_one():
    """What one consumer thread does for one message: claim, execute, settle."""
    task = huey.dequeue()
    assert task is not None, "expected a message on the queue"
    huey.execute(task)
    huey.storage.flush()  # what the thread's next claim does first
    return task


def promote_due(now_offset=0.0):
    """Run the scheduler's step (reaper + due retries) as if `now_offset` seconds had passed."""
    import datetime

    huey.storage.read_schedule(datetime.datetime.utcnow() + datetime.timedelta(seconds=now_offset))
