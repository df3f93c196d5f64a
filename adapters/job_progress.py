"""The ProgressStore a runner gives its jobs' contexts (functions/context.py), on either pairing.

Progress is best effort: a write that fails (the store unreachable for a moment) is logged and the
job goes on; its next report, or the flush at its end, writes again. Only `Unavailable` is caught:
a JobTimeout raised in the job's thread during a write still stops the job.
"""

import logging
from collections.abc import Callable

from functions.errors import Unavailable

log = logging.getLogger("forkline.jobs")


class JobProgressWriter:
    """`write(job_id, fraction, note)`: the store's one write of a job's progress."""

    def __init__(self, write: Callable[[str, float, str], None]):
        self.write = write

    def progress(self, job_id: str, fraction: float, note: str) -> None:
        try:
            self.write(job_id, fraction, note)
        except Unavailable as exc:
            log.warning("progress of job %s not stored: %s", job_id, exc,
                        extra={"event": "progress_unstored", "jobId": job_id})
