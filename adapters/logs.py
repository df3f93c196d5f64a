"""Structured JSON logs to stderr and to one file per day under LOG_DIR.

Every process of the stack appends to the same dated file
(`forkline-YYYY-MM-DD.log`). Files are never renamed, so concurrent writers
need no coordination: each one switches to the new day's file on its own.
Old files are deleted after LOG_RETENTION_DAYS by `prune_logs`.
"""

import datetime as dt
import json
import logging
import os
import sys
import time
from pathlib import Path

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str):
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "role": self.role,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class DailyFileHandler(logging.Handler):
    """Append to LOG_DIR/forkline-<UTC date>.log, opening the next file at midnight."""

    def __init__(self, directory: str):
        super().__init__()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._day = ""
        self._fd: int | None = None

    def _file_for_today(self) -> int:
        day = time.strftime("%Y-%m-%d", time.gmtime())
        if day != self._day or self._fd is None:
            if self._fd is not None:
                os.close(self._fd)
            path = self.directory / f"forkline-{day}.log"
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._day = day
        return self._fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "replace")
            os.write(self._file_for_today(), line)  # one O_APPEND write per line
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        super().close()


def setup_logging(role: str, level: str = "info", log_dir: str | None = None) -> None:
    """(Re)configure the root logger for this process; called again after fork."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = JsonFormatter(role)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(formatter)
    root.addHandler(stream)
    if log_dir:
        daily = DailyFileHandler(log_dir)
        daily.setFormatter(formatter)
        root.addHandler(daily)
    root.setLevel(level.upper())
    logging.getLogger("huey").setLevel("WARNING" if level != "debug" else "DEBUG")


def prune_logs(log_dir: str, keep_days: int, today: dt.date | None = None) -> list[Path]:
    """Delete dated log files older than keep_days; return what was deleted."""
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
