"""A `forkline run` stack on this machine, found from the port it serves: its supervisor and each
child's role, read from /proc (the process titles `forkline: <role> [n]`). What `forkline check --chaos`
kills; nothing here starts or stops a stack."""

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

SUPERVISOR_TITLE = "forkline: supervisor"
CLOUD_MODULE = "local.cloud_emulation.moto_server"


def listening_inodes(port: int) -> set[str]:
    """The inodes of the sockets listening on `port` (IPv4 and IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def holders(inodes: set[str]) -> list[int]:
    """The processes (that this user can see) holding one of these sockets."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in wanted for fd in (proc / "fd").iterdir()):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def children(pid: int) -> list[int]:
    """A process's children, from /proc (none when it is gone)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def role_of(pid: int) -> str | None:
    """web, consumer, redis or cloud, from the child's title; None for anything else."""
    text = title(pid)
    if CLOUD_MODULE in text:
        return "cloud"
    if text.startswith("forkline: "):
        return text.removeprefix("forkline: ").split()[0]
    return None


@dataclass
class LocalStack:
    supervisor: int
    roles: dict[int, str] = field(default_factory=dict)  # pid -> role, the supervisor's children

    def first(self, role: str) -> int | None:
        return next((pid for pid, r in sorted(self.roles.items()) if r == role), None)

    def kill(self, role: str) -> int | None:
        """SIGKILL the first live child in `role` (the supervisor replaces it); its pid, None if none."""
        pid = self.first(role)
        if pid is None:
            return None
        os.kill(pid, signal.SIGKILL)
        return pid


def find_stack(port: int) -> LocalStack | None:
    """The stack whose supervisor (or one of its web workers) listens on `port`, or None."""
    for pid in holders(listening_inodes(port)):
        supervisor = pid if title(pid).startswith(SUPERVISOR_TITLE) else parent(pid)
        if title(supervisor).startswith(SUPERVISOR_TITLE):
            roles = {child: role for child in children(supervisor) if (role := role_of(child)) is not None}
            return LocalStack(supervisor, roles)
    return None
