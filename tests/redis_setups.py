"""Redis set-ups the managed-Redis and high-availability tests start for real: TLS with an ACL user,
and a Sentinel group (master, replica, three sentinels) on loopback ports.

Every process is started here and stopped by its pid, with a bound on every wait.
"""

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from harness.processes import RedisProcess, stop_pid, wait_until
from local.runtime.redis_server import free_port, redis_server_binary

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


class RedisClusterGroup:
    """Three masters (no replicas) on loopback ports, joined by `redis-cli --cluster create`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.ports = [free_port() for _ in range(3)]
        self.procs: list[subprocess.Popen] = []

    def start(self) -> "RedisClusterGroup":
        for port in self.ports:
            node = self.folder / str(port)
            node.mkdir(parents=True, exist_ok=True)
            self.procs.append(subprocess.Popen(
                [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node),
                 "--cluster-enabled", "yes", "--cluster-config-file", str(node / "nodes.conf"),
                 "--cluster-port", str(free_port()), "--cluster-node-timeout", "2000", "--save", "",
                 "--appendonly", "yes", "--logfile", str(node / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in self.ports:
            wait_until(lambda port=port: self._answers(port), 10, 0.05, f"cluster node :{port}")
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                        "--cluster-yes"], check=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        self.wait_ok()
        return self

    def _answers(self, port: int) -> bool:
        try:
            client = redis.Redis(port=port, socket_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError):
            return False

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=5)

    def wait_ok(self) -> None:
        def ok() -> bool:
            for port in self.ports:
                client = self.node(port)
                try:
                    if client.cluster("INFO").get("cluster_state") != "ok":
                        return False
                except (redis.RedisError, OSError):
                    return False
                finally:
                    client.close()
            return True

        wait_until(ok, 30, 0.1, "every node to see the cluster ok")

    @property
    def url(self) -> str:
        """Every master as a seed node."""
        return "redis://" + ",".join(f"127.0.0.1:{p}" for p in self.ports) + "/0"

    def owners(self) -> dict[int, tuple[str, int]]:
        """Slot -> (node id, port) of its master, as the first node sees it."""
        client = self.node(self.ports[0])
        try:
            found = {}
            for start, end, (_, port, node_id, *_) in client.execute_command("CLUSTER", "SLOTS"):
                for slot in range(start, end + 1):
                    found[slot] = (node_id.decode(), int(port))
            return found
        finally:
            client.close()

    def slot_of(self, key: str) -> int:
        client = self.node(self.ports[0])
        try:
            return int(client.execute_command("CLUSTER", "KEYSLOT", key))
        finally:
            client.close()

    def give_empty_slot(self, slot: int, port: int) -> None:
        """Hand a slot holding no keys to the master on `port` (CLUSTER SETSLOT ... NODE on every master)."""
        target = self.node(port)
        node_id = target.execute_command("CLUSTER", "MYID").decode()
        target.close()
        owner_port = self.owners()[slot][1]
        for p in [port, owner_port] + [q for q in self.ports if q not in (port, owner_port)]:
            client = self.node(p)
            try:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", node_id)
            finally:
                client.close()
        wait_until(lambda: self.owners()[slot][1] == port, 10, 0.1, f"slot {slot} on :{port}")

    def reshard(self, source_port: int, target_port: int, slots: int) -> subprocess.CompletedProcess:
        """`redis-cli --cluster reshard`: move `slots` slots (the source's first ones) with their keys."""
        ids = {}
        for port in (source_port, target_port):
            client = self.node(port)
            ids[port] = client.execute_command("CLUSTER", "MYID").decode()
            client.close()
        return subprocess.run(
            ["redis-cli", "--cluster", "reshard", f"127.0.0.1:{self.ports[0]}", "--cluster-from", ids[source_port],
             "--cluster-to", ids[target_port], "--cluster-slots", str(slots), "--cluster-yes"],
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)

    def flush(self) -> None:
        for port in self.ports:
            client = self.node(port)
            try:
                client.flushall()
            finally:
                client.close()

    def stop(self) -> None:
        for proc in self.procs:
            stop_pid(proc, timeout=10)
