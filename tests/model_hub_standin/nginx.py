"""A real nginx on a loopback port serving a directory: the HTTP mirror of an air-gapped site.

Its access log records method, path, status and body bytes of every request, so tests can count what a
fetch transferred.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

CONFIG = """\
{user}
daemon off;
worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/error.log;
events {{ worker_connections 64; }}
http {{
    log_format transfer '$request_method $uri $status $body_bytes_sent';
    access_log {run}/access.log transfer;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Nginx:
    def __init__(self, binary: str, root: Path, run_dir: Path):
        self.binary, self.root, self.run_dir = binary, root, run_dir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Nginx:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "nginx.conf"
        # Workers run as "nobody" under root, and pytest's temporary directories are 0700.
        user = "user root;" if os.geteuid() == 0 else ""
        config.write_text(CONFIG.format(user=user, run=self.run_dir, port=self.port, root=self.root))
        subprocess.run([self.binary, "-t", "-q", "-c", str(config), "-p", str(self.run_dir)], check=True)
        self.process = subprocess.Popen([self.binary, "-c", str(config), "-p", str(self.run_dir)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"nginx did not listen on {self.port}: {(self.run_dir / 'error.log').read_text()}")

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def transfers(self) -> list[tuple[str, str, int, int]]:
        """(method, path, status, body bytes) of every request so far."""
        log = self.run_dir / "access.log"
        if not log.exists():
            return []
        rows = [line.split() for line in log.read_text().splitlines()]
        return [(m, p, int(s), int(b)) for m, p, s, b in rows]
