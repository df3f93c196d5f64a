"""Redis set-ups the managed-Redis and high-availability tests start for real: TLS with an ACL user,
and a Sentinel group (master, replica, three sentinels) on loopback ports.

Every process is started here and stopped by its pid, with a bound on every wait.
"""

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from local.processes import RedisProcess, stop_pid, wait_until
from local.redis_server import free_port, redis_server_binary

USER, PASSWORD = "forkline", "s3cret-pass"


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    ext = folder / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    for command in (
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=forkline test CA"],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "2", "-extfile", ext],
    ):
        subprocess.run([str(part) for part in command], check=True, capture_output=True, timeout=60)
    return ca, cert, key


class TLSRedis(RedisProcess):
    """redis-server speaking only TLS, with the default user off and one ACL user (USER, PASSWORD)."""

    def __init__(self, data_dir: Path, extra: tuple[str, ...] = ()):
        self.ca, cert, key = make_certificates(data_dir / "tls")
        super().__init__(data_dir, persist=False, extra=(
            "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(self.ca),
            "--tls-auth-clients", "no", "--user", "default", "off",
            "--user", USER, "on", f">{PASSWORD}", "~*", "&*", "+@all", "--port", "0", *extra))
        self.tls_port = free_port()
        self.extra = (*self.extra, "--tls-port", str(self.tls_port))

    @property
    def url(self) -> str:
        return f"rediss://{USER}:{PASSWORD}@127.0.0.1:{self.tls_port}/0?ssl_ca_certs={self.ca}"

    def start(self) -> None:
        super().start()  # waits on self.url: the TLS port with the ACL user


@dataclass
class SentinelGroup:
    """A master, a replica and three sentinels watching them as MASTER_NAME (quorum 2)."""

    folder: Path
    master_name: str = "forkline"
    down_after_ms: int = 1000
    master: RedisProcess = field(init=False)
    replica: RedisProcess = field(init=False)
    sentinels: list[subprocess.Popen] = field(default_factory=list)
    sentinel_ports: list[int] = field(default_factory=list)

    def start(self) -> "SentinelGroup":
        self.master = RedisProcess(self.folder / "master")
        self.master.start()
        self.replica = RedisProcess(self.folder / "replica", extra=("--replicaof", "127.0.0.1", str(self.master.port)))
        self.replica.start()
        wait_until(lambda: self.replica.client().info("replication").get("master_link_status") == "up", 15,
                   0.1, "the replica to sync")
        for n in range(3):
            port = free_port()
            conf = self.folder / f"sentinel-{n}" / "sentinel.conf"
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {conf.parent}\nlogfile {conf.parent / 'sentinel.log'}\n"
                f"sentinel monitor {self.master_name} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.master_name} 10000\n"
                f"sentinel parallel-syncs {self.master_name} 1\n")
            self.sentinels.append(subprocess.Popen([redis_server_binary(), str(conf), "--sentinel"],
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.sentinel_ports.append(port)
        wait_until(lambda: all(self._sees_replica(p) for p in self.sentinel_ports), 20, 0.2,
                   "every sentinel to know the master and its replica")
        return self

    def _sees_replica(self, port: int) -> bool:
        try:
            client = redis.Redis(port=port, socket_timeout=1)
            try:
                return bool(client.sentinel_slaves(self.master_name)) and len(
                    client.sentinel_sentinels(self.master_name)) == 2
            finally:
                client.close()
        except (redis.RedisError, OSError):
            return False

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def master_port(self) -> int:
        """The master's port as the first sentinel that answers reports it."""
        for port in self.sentinel_ports:
            try:
                client = redis.Redis(port=port, socket_timeout=1)
                try:
                    return int(client.sentinel_get_master_addr_by_name(self.master_name)[1])
                finally:
                    client.close()
            except (redis.RedisError, OSError):
                continue
        raise AssertionError("no sentinel answers")

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> float:
        """Seconds until the sentinels name a new master that accepts writes."""
        started = time.monotonic()

        def promoted() -> bool:
            try:
                port = self.master_port()
                if port == old_port:
                    return False
                client = redis.Redis(port=port, socket_timeout=1)
                try:
                    return client.info("replication")["role"] == "master"
                finally:
                    client.close()
            except (redis.RedisError, OSError, AssertionError):
                return False

        wait_until(promoted, timeout, 0.05, "the sentinels to promote the replica")
        return time.monotonic() - started

    def stop(self) -> None:
        for proc in self.sentinels:
            stop_pid(proc, timeout=10)
        self.replica.stop()
        self.master.stop()
