"""A real nginx (Debian's package) in front of forkline, running deploy/nginx/forkline.conf."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from harness.processes import ROOT, stop_pid, wait_until
from local.runtime.redis_server import free_port

NGINX = "/usr/sbin/nginx"
SITE = ROOT / "deploy" / "nginx" / "forkline.conf"

MAIN = """daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/forkline.conf;
}}
"""


def site_config(upstream_port: int, listen_port: int) -> str:
    """The manual's configuration (deploy/nginx/forkline.conf) with only forkline's address and the
    listening port changed."""
    text = SITE.read_text()
    for old, new in (("server 127.0.0.1:3000;", f"server 127.0.0.1:{upstream_port};"),
                     ("listen 80;", f"listen 127.0.0.1:{listen_port};")):
        assert text.count(old) == 1, f"{SITE} no longer has {old!r}"
        text = text.replace(old, new)
    return text


class Nginx:
    """nginx on a free loopback port with its own config, logs and temp files; stopped by pid."""

    def __init__(self, upstream_port: int):
        self.port = free_port()
        # Outside pytest's private tmp dir: nginx's workers run as nobody and write temp files here.
        self.dir = Path(tempfile.mkdtemp(prefix="forkline-nginx-"))
        os.chmod(self.dir, 0o755)
        (self.dir / "forkline.conf").write_text(site_config(upstream_port, self.port))
        (self.dir / "nginx.conf").write_text(MAIN.format(dir=self.dir))
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Nginx":
        self.proc = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.log", "wb"))
        wait_until(self._listening, 10, 0.05, "nginx to listen")
        return self

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"nginx exited: {(self.dir / 'stderr.log').read_text()}{self.errors()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def errors(self) -> str:
        path = self.dir / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc, signal.SIGQUIT, timeout=10)  # graceful: finish requests in hand
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
