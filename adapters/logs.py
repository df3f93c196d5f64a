"""Structured logs: to stdout (12-factor) and to one file per day under LOG_DIR.

Each record is serialised once, as one JSON line, and written with one `write` to
each destination. stdout gets a short human format instead when it is a terminal;
the files are always JSON. Every process of the stack appends to the same dated
file (`forkline-YYYY-MM-DD.log`); files are never renamed, so concurrent writers
need no coordination. Old files are deleted after LOG_RETENTION_DAYS by `prune_logs`.

A line written while an HTTP request is served carries its `requestId`
(`REQUEST_ID`, set by the request-id middleware), and its `traceId` and `spanId` (`TRACE`); a line
written while a job runs, the request's id and the attempt's span.
"""

import datetime as dt
import json
import logging
import math
import os
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# The span a line is written in (a request's, or a job attempt's): an object whose ids() gives (trace id,
# span id), made only when a line asks (adapters/tracing.py).
TRACE: ContextVar[Any] = ContextVar("trace", default=None)

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
_encode = json.JSONEncoder(default=str).encode  # one encoder: json.dumps(default=...) builds one per call
_str = json.encoder.encode_basestring_ascii  # a str as a JSON string, in C


def _value(value: Any) -> str:
    """One field's JSON, the common types without the encoder's call overhead."""
    kind = type(value)
    if kind is str:
        return _str(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return _encode(value)
_HUMAN_SKIP = frozenset({"event"})
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error",
                logging.CRITICAL: "critical"}
_SINK: "LogSink | None" = None  # this process's sink, once setup_logging ran


class LogLine:
    """A record as a JSON line (and as a short human line), with the second's timestamp text cached."""

    def __init__(self, role: str):
        self.role = role
        self._second = -1
        self._stamp = ""
        self._middles: dict[tuple[int, str], str] = {}

    def stamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((created - second) * 1000):03d}+00:00"

    def head(self, created: float, level: int, logger: str, message: str, pid: int) -> dict[str, Any]:
        entry: dict[str, Any] = {"time": self.stamp(created), "level": _LEVEL_NAMES.get(level, "info"),
                                 "role": self.role, "pid": pid, "logger": logger, "message": message}
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["requestId"] = request_id
        span = TRACE.get()
        if span is not None:
            entry["traceId"], entry["spanId"] = span.ids()
        return entry

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        entry = self.head(record.created, record.levelno, record.name, record.getMessage(), record.process or 0)
        for key, value in record.__dict__.items():  # extras in the order given
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = logging.Formatter().formatException(record.exc_info)
        return entry

    def fast_json(self, level: int, logger: str, message: str, fields: dict[str, Any], pid: int) -> bytes:
        key = (level, logger)
        middle = self._middles.get(key)
        if middle is None:
            level_name = _LEVEL_NAMES.get(level, "info")
            middle = self._middles[key] = (f'", "level": "{level_name}", "role": {_str(self.role)}, '
                                           f'"pid": {pid}, "logger": {_str(logger)}, "message": ')
        parts = ['{"time": "', self.stamp(time.time()), middle, _str(message)]
        request_id = REQUEST_ID.get()
        if request_id is not None:
            parts += (', "requestId": ', _str(request_id))
        span = TRACE.get()
        if span is not None:
            trace_id, span_id = span.ids()
            parts += (', "traceId": "', trace_id, '", "spanId": "', span_id, '"')
        for name, value in fields.items():
            parts += (', "', name, '": ', _value(value))
        parts.append("}\n")
        return "".join(parts).encode("utf-8", "replace")

    def json(self, entry: dict[str, Any]) -> bytes:
        return (_encode(entry) + "\n").encode("utf-8", "replace")

    def human(self, entry: dict[str, Any]) -> bytes:
        extra = " ".join(f"{k}={v}" for k, v in entry.items()
                         if k not in ("time", "level", "role", "pid", "logger", "message", "traceback")
                         and k not in _HUMAN_SKIP)
        text = f"{entry['time'][11:23]} {entry['level'].upper():<7} {self.role}/{entry['pid']} {entry['message']}"
        text = f"{text}  {extra}" if extra else text
        if "traceback" in entry:
            text += "\n" + entry["traceback"]
        return (text + "\n").encode("utf-8", "replace")


DROPPED_NOTE_SECONDS = 60.0  # at most one note a minute on stderr while the log file refuses lines


class LogSink(logging.Handler):
    """The one handler: JSON to the day's file under `log_dir` (if any) and to stdout
    (human when stdout is a terminal), each with one O_APPEND write per line."""

    def __init__(self, role: str, log_dir: str | None, human: bool | None = None):
        super().__init__()
        self.line = LogLine(role)
        self.human = os.isatty(1) if human is None else human
        self.directory = Path(log_dir) if log_dir else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._day_ends = 0.0  # the UTC midnight after which the next file starts
        self._fd: int | None = None
        self.pid = os.getpid()
        self._dropped = 0  # lines the file refused since the last note on stderr
        self._torn = False  # the file ends in part of a line
        self._next_note = 0.0  # monotonic: no note on stderr before then

    def _file_for_today(self) -> int:
        assert self.directory is not None
        now = time.time()
        if now >= self._day_ends or self._fd is None:  # the date is formatted once a day, not once a line
            day = time.strftime("%Y-%m-%d", time.gmtime(now))
            if self._fd is not None:
                os.close(self._fd)
            self._fd = os.open(self.directory / f"forkline-{day}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._day_ends = (now // 86400 + 1) * 86400
        return self._fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write(self.line.fields(record))
        except Exception:
            self.handleError(record)

    def _to_file(self, data: bytes) -> None:
        """One line to the day's file. A line the disk refuses (full, or a file that cannot grow) is
        dropped and counted, never raised: stderr hears of it at most once every DROPPED_NOTE_SECONDS,
        with how many; the same file takes lines again when space returns. (The descriptor is not
        closed on a failure: another thread may be writing through it, and a closed number is soon
        reused, by a Redis socket for one.)"""
        line = b"\n" + data if self._torn else data  # after a torn line, start on a line of its own
        try:
            written = os.write(self._file_for_today(), line)
            whole, why = written == len(line), "only part of a line fitted"
        except OSError as exc:
            written, whole, why = 0, False, str(exc.strerror)
        self._torn = (self._torn and written == 0) or (0 < written < len(line))
        if not whole:  # (a part that fitted stays in the file as one torn line)
            self._dropped += 1
            if time.monotonic() >= self._next_note:
                self._note(f"{self._dropped} log line(s) dropped: {self.directory} refuses them ({why}); "
                           f"the next note at most {DROPPED_NOTE_SECONDS:.0f} s from now")
            return
        if self._dropped:
            self._note(f"log file writable again; {self._dropped} line(s) dropped since the last note")

    def _note(self, text: str) -> None:
        self._dropped, self._next_note = 0, time.monotonic() + DROPPED_NOTE_SECONDS
        try:
            os.write(2, f"forkline[{self.pid}]: {text}\n".encode())
        except OSError:
            pass

    def write(self, entry: dict[str, Any]) -> None:
        data = self.line.json(entry)
        if self.directory is not None:
            self._to_file(data)
        os.write(1, self.line.human(entry) if self.human else data)

    def write_fields(self, level: int, logger: str, message: str, fields: dict[str, Any]) -> None:
        """A line without a LogRecord (FastLogger), its fixed part serialised once per logger and
        level; the same JSON as `write`. A failed write is dropped, as logging does."""
        try:
            if self.human:
                entry = self.line.head(time.time(), level, logger, message, self.pid)
                entry.update(fields)
                self.write(entry)
                return
            data = self.line.fast_json(level, logger, message, fields, self.pid)
            if self.directory is not None:
                self._to_file(data)
            os.write(1, data)
        except OSError:
            pass

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        super().close()


def setup_logging(role: str, level: str = "info", log_dir: str | None = None) -> None:
    """(Re)configure the root logger for this process; called again after fork."""
    # Skip what no line prints: the caller's frame, thread and process names (a third of a record's cost).
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    global _SINK
    _SINK = LogSink(role, log_dir)
    root.addHandler(_SINK)
    root.setLevel(level.upper())
    logging.getLogger("huey").setLevel("WARNING" if level != "debug" else "DEBUG")


def prune_logs(log_dir: str, keep_days: int, today: dt.date | None = None) -> list[Path]:
    """Delete dated log files older than keep_days; return what was deleted (none without LOG_DIR)."""
    if not log_dir:
        return []
    today = today or dt.datetime.now(dt.UTC).date()
    removed = []
    for path in Path(log_dir).glob("forkline-*.log"):
        try:
            day = dt.date.fromisoformat(path.stem.removeprefix("forkline-"))
        except ValueError:
            continue
        if (today - day).days >= keep_days:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class FastLogger:
    """For the lines written once per request or job: the same JSON, fields and destinations
    as the logging module, without building a LogRecord (a third of a line's cost).

    The level is the logger's (`LOG_LEVEL`); without a LogSink configured in this process
    the line goes through the logging module as usual.
    """

    def __init__(self, name: str):
        self.name = name
        self.logger = logging.getLogger(name)

    def log(self, level: int, message: str, fields: dict[str, Any]) -> None:
        if not self.logger.isEnabledFor(level):
            return
        sink = _SINK
        if sink is None:
            self.logger.log(level, message, extra=fields)
            return
        sink.write_fields(level, self.name, message, fields)

    def debug(self, message: str, **fields: Any) -> None:
        self.log(logging.DEBUG, message, fields)

    def info(self, message: str, **fields: Any) -> None:
        self.log(logging.INFO, message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log(logging.WARNING, message, fields)
