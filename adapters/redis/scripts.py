"""Every Lua script forkline runs, loaded from `lua/`, and the message framing they parse.

A queue message is framed `<job id>\\n<huey message>` so that a script can find the
job record of a message it claims (claim.lua). Scripts are not bound to a client:
run them with `RedisHandle.run`.
"""

import hashlib
from dataclasses import dataclass
from importlib.resources import files

_LUA = files(__package__) / "lua"


@dataclass(frozen=True)
class LuaScript:
    name: str
    source: bytes
    sha: str


def _load(*names: str) -> LuaScript:
    source = "\n".join((_LUA / f"{name}.lua").read_text(encoding="utf-8") for name in names).encode()
    return LuaScript(names[-1], source, hashlib.sha1(source).hexdigest())


SUBMIT = _load("submit")
BURY = _load("finish", "bury")
CLAIM = _load("finish", "claim")
REAP = _load("reap")
RELEASE = _load("release")
DLQ_TAKE = _load("dlq_take")
DLQ_PENDING_TAKE = _load("dlq_pending_take")
CANCEL = _load("cancel")
ALL = (SUBMIT, BURY, CLAIM, REAP, RELEASE, DLQ_TAKE, DLQ_PENDING_TAKE, CANCEL)


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
