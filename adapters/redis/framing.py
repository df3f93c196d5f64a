"""The framing of a queue message: `<job id> <format>\\n<huey message>`.

A script finds the job record of a message it claims from the frame (claim.lua parses it);
the Huey message inside is opaque here. Format 1 (`<job id>\\n...`) is still read.
"""

MESSAGE_FORMAT = 2  # the newest format this code reads and writes


def frame_message(job_id: str, message: bytes, message_format: int = MESSAGE_FORMAT) -> bytes:
    """The queue message of a job: its id, its format (from 2 on), a newline, then the Huey message."""
    header = job_id if message_format == 1 else f"{job_id} {message_format}"
    return header.encode() + b"\n" + message


def unframe_message(data: bytes) -> bytes:
    """The Huey message inside a framed queue message."""
    return data.split(b"\n", 1)[1]


def message_format(data: bytes) -> int:
    """The format a framed message is written in."""
    header = data.split(b"\n", 1)[0]
    _, space, version = header.partition(b" ")
    return int(version) if space and version.isdigit() else 1


def framed_job_id(data: bytes) -> str:
    """The id of the job a framed message carries (what claim.lua reads to find its record)."""
    return data.split(b"\n", 1)[0].partition(b" ")[0].decode(errors="replace")
