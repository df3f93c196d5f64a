"""Start and stop forkline's processes by pid, with a bound on every wait.

Shared by `forkline bench`, the scripts in bench/ and the tests.
"""

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from local.commands.local_stack import children as children_of
from local.runtime.redis_server import free_port, start_redis, wait_for_redis

ROOT = Path(__file__).resolve().parent.parent
FORKLINE = [sys.executable, "-m", "local.commands.cli"]


def stop_pid(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
    """Signal one process by pid and wait for it; SIGKILL after `timeout`."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            return proc.wait(5)
    return proc.returncode


def is_gone(pid: int) -> bool:
    """True once `pid` has exited: no such process, or a zombie waiting to be reaped.

    The process may vanish between any two looks at it, so a failed read counts as gone.
    """
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def request(port: int, method: str, path: str, body=None, headers=None, timeout: float = 5.0):
    """One HTTP request to 127.0.0.1; returns (status, headers, parsed JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return resp.status, dict(resp.getheaders()), parsed
    finally:
        conn.close()


class RedisProcess:
    """A real redis-server on a free loopback port, stoppable and restartable."""

    def __init__(self, data_dir: Path, persist: bool = True, extra: tuple[str, ...] = (),
                 unix_socket: Path | None = None):
        """`unix_socket`: listen on that socket path only (no TCP port)."""
        self.port = free_port()
        self.data_dir = data_dir
        self.persist = persist
        self.unix_socket = unix_socket
        socket_options = ("--unixsocket", str(unix_socket), "--unixsocketperm", "700", "--port", "0")
        self.extra = extra + (socket_options if unix_socket else ())  # more redis-server options
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.unix_socket}?db=0" if self.unix_socket else f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = start_redis(self.port, self.data_dir, self.persist, extra=self.extra)
        if not wait_for_redis(self.url, timeout=10):
            self.stop()
            raise RuntimeError("redis-server did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            stop_pid(self.proc, sig, timeout=10)
            self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)


class Forkline:
    """`forkline <command>` as a subprocess on a free port, with its own env and log dir."""

    def __init__(self, command: str, tmp: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                 own_group: bool = False, cli: tuple[str, ...] = tuple(FORKLINE)):
        """`own_group`: in a process group of its own, so that `kill_group` can take down it and every
        child it forked at once, as a host dying would. `cli`: how to start the command (an older
        checkout's module path, for the rolling-deploy test)."""
        self.port = free_port()
        self.tmp = tmp
        self.log_path = tmp / f"forkline-{command}-{self.port}.out"
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "LOG_DIR": str(tmp / "logs"),
            "DATA_DIR": str(tmp / "data"),
            "LOG_LEVEL": "info",
            "PYTHONPATH": str(ROOT),
            # One consumer at the web workers' priority unless a test asks: the suite's timing bounds were set
            # for that, and a niced consumer starves behind the test process on 2 cores.
            "CONSUMER_PROCESSES": "1",
            "CONSUMER_NICE": "0",
            **(env or {}),
        }
        self.command, self.args, self.cli = command, args, cli
        self.own_group = own_group
        self.proc: subprocess.Popen | None = None

    def start(self, wait_http: bool = True, timeout: float = 20.0) -> "Forkline":
        self.out = open(self.log_path, "wb")
        self.proc = subprocess.Popen([*self.cli, self.command, *self.args], env=self.env, cwd=self.tmp,
                                     stdout=self.out, stderr=subprocess.STDOUT, start_new_session=self.own_group)
        if wait_http:
            wait_until(self._healthy, timeout, 0.1, f"forkline {self.command} to answer /health")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, "start() first"
        return self.proc.pid

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"forkline exited with {self.proc.returncode}:\n{self.output()}")
        try:
            return self.request("GET", "/health", timeout=1)[0] == 200
        except OSError:
            return False

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 5.0):
        return request(self.port, method, path, body, headers, timeout)

    def roles(self) -> dict[int, str]:
        """pid -> role of each live child, from the supervisor's own `worker_born` log lines."""
        born = {}
        for line in self.output().splitlines():
            if '"worker_born"' in line:
                entry = json.loads(line)
                born[entry["child"]] = entry["worker_role"]
        assert self.proc is not None
        live = set(children_of(self.proc.pid))
        return {pid: role for pid, role in born.items() if pid in live}

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill_group(self, timeout: float = 10.0) -> int:
        """SIGKILL its whole process group (started with own_group) at once; the group leader's status."""
        assert self.proc is not None and self.own_group, "start(own_group=True) first"
        os.killpg(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait(timeout)
        self.out.close()
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int:
        if self.proc is None:
            return 0
        code = stop_pid(self.proc, sig, timeout)
        if self.own_group:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # whatever of its group is left
            except ProcessLookupError:
                pass
        self.out.close()
        return code
