"""A job type that blocks inside one C call, for the stuck-job test: on PYTHONPATH, every Python
process started there knows the job type `block` (`{"type": "block", "seconds": 60}`), whose job is
one `time.sleep(seconds)`: the JobTimeout raised in its thread cannot be delivered until it returns,
as with a socket read without a timeout."""

import time

from pydantic import BaseModel, Field

from functions.jobs import JOB_TYPES, JobType


class BlockPayload(BaseModel):
    seconds: float = Field(ge=0, le=600)


def run_block(payload: BlockPayload) -> dict[str, float]:
    time.sleep(payload.seconds)
    return {"blocked": payload.seconds}


JOB_TYPES["block"] = JobType("block", BlockPayload, run_block)
