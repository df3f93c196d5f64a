"""The framing of a queue message: `<job id> <format>\\n<body>`.

A script finds the job record of a message it claims from the frame (claim.lua parses it); the
body is opaque to the scripts. Formats, all still read:
- 1 (`<job id>\\n<huey message>`): before named queues, in the old keys only;
- 2: the body is Huey's own message (a pickle), as `huey.serialize_task` writes it;
- 3: the body is JSON, `{"type", "payload", "requestId", "replays"}`: what the job task is called
  with, in two thirds of the bytes and half the web side's encoding time of format 2 (bench/RESULTS.md).
A web worker writes format 3 unless QUEUE_MESSAGE_FORMAT=2 (a rolling deploy from a version that
reads only format 2: docs/guarantees.md).
"""

import json
from typing import Any

MESSAGE_FORMAT = 3  # the newest format this code reads and writes
HUEY_FORMAT = 2  # the newest format whose body is Huey's pickled message
COMPACT_FORMAT = 3  # the format whose body is JSON (compact_message)
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def frame_message(job_id: str, message: bytes, message_format: int = MESSAGE_FORMAT) -> bytes:
    """The queue message of a job: its id, its format (from 2 on), a newline, then the body."""
    header = job_id if message_format == 1 else f"{job_id} {message_format}"
    return header.encode() + b"\n" + message


def compact_message(job_id: str, job_type: str, payload: dict[str, Any], request_id: str, replays: int) -> bytes:
    """A format-3 message: the job task's arguments as JSON."""
    body = _COMPACT.encode({"type": job_type, "payload": payload, "requestId": request_id, "replays": replays})
    return frame_message(job_id, body.encode(), COMPACT_FORMAT)


def read_compact(data: bytes) -> tuple[str, str, dict[str, Any], str, int]:
    """A format-3 message's job id, type, payload, request id and replays."""
    fields = json.loads(unframe_message(data))
    return framed_job_id(data), fields["type"], fields["payload"], fields.get("requestId", ""), fields.get("replays", 0)


def unframe_message(data: bytes) -> bytes:
    """The body of a framed queue message."""
    return data.split(b"\n", 1)[1]


def message_format(data: bytes) -> int:
    """The format a framed message is written in."""
    header = data.split(b"\n", 1)[0]
    _, space, version = header.partition(b" ")
    return int(version) if space and version.isdigit() else 1


def framed_job_id(data: bytes) -> str:
    """The id of the job a framed message carries (what claim.lua reads to find its record)."""
    return data.split(b"\n", 1)[0].partition(b" ")[0].decode(errors="replace")
