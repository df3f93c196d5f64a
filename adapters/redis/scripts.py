"""Every Lua script forkline runs, loaded from `lua/`.

Scripts are not bound to a client: run them with `RedisHandle.run`. The queue messages they
parse are framed by `adapters/redis/framing.py`.
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


SUBMIT = _load("index", "submit")
BURY = _load("index", "finish", "bury")
CLAIM = _load("index", "finish", "requeue", "move_due", "claim")
REAP = _load("requeue", "move_due", "reap")
RELEASE = _load("requeue", "release")
RETRY = _load("index", "retry")
DLQ_TAKE = _load("dlq_take")
DLQ_PENDING_TAKE = _load("dlq_pending_take")
CANCEL = _load("index", "cancel")
FORGET = _load("index", "forget")
PROMOTE = _load("index", "requeue", "promote")
PROGRESS = _load("progress")
OLDEST = _load("oldest")
ALL = (SUBMIT, BURY, CLAIM, REAP, RELEASE, RETRY, DLQ_TAKE, DLQ_PENDING_TAKE, CANCEL, FORGET, PROMOTE, PROGRESS,
       OLDEST)
