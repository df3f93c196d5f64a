"""What one consumer thread does, step by step, for tests of the queue on a real Redis."""

import time

from adapters.huey.forkline_huey import queue_huey
from adapters.redis import keys
from functions import routes

huey = queue_huey(keys.queue_keys("default"))  # the default queue's instance: message and noop jobs
slow = queue_huey(keys.queue_keys("slow"))  # sleep jobs


def submit(ports, body, max_attempts=4):
    return routes.submit_job(body, ports.jobs, lambda: f"job-{time.monotonic_ns()}", time.time(), max_attempts)[0].jobId


def work_one(on=huey):
    """What one consumer thread of a queue (`on`: its Huey) does for one message: claim, execute, settle."""
    task = on.dequeue()
    assert task is not None, "expected a message on the queue"
    on.execute(task)
    on.storage.flush()  # what the thread's next claim does first
    return task


def promote_due(now_offset=0.0, on=huey):
    """Run the scheduler's step (reaper + due retries) as if `now_offset` seconds had passed."""
    import datetime

    on.storage.read_schedule(datetime.datetime.utcnow() + datetime.timedelta(seconds=now_offset))
