"""The local embedded PostgreSQL cluster under $PGMLOPS_HOME (default ./.pgmlops).

initdb refuses to run as root, so when we are root every server command runs as an
unprivileged user (``pgmlops``, created by scripts/install-system-deps.sh, or
``postgres``) through runuser. The server listens on a Unix socket inside the home
and on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ServerError

PG_BIN = Path(os.environ.get("PGMLOPS_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USERS = ("pgmlops", "postgres")
SUPERUSER = "postgres"
DATABASE = "pgmlops"


def default_home() -> Path:
    return Path(os.environ.get("PGMLOPS_HOME", "./.pgmlops")).resolve()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _server_user() -> str | None:
    """The unprivileged user to run PostgreSQL as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ServerError("running as root needs an unprivileged user 'pgmlops' or 'postgres' "
                      "(run scripts/install-system-deps.sh)")


@dataclass
class LocalServer:
    """A private PostgreSQL 15 cluster with pgvector and plpython3u available."""

    home: Path
    settings: tuple[tuple[str, str], ...] = ()
    # Server binaries; another installation (e.g. one without plpython3u) can be chosen per server.
    pg_bin: Path = PG_BIN

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def port(self) -> int:
        return int((self.home / "port").read_text())

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        user = _server_user()
        if user is not None:
            cmd = ["runuser", "-u", user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/", check=False)
        if check and proc.returncode != 0:
            raise ServerError(f"{Path(args[0]).name} failed: {(proc.stderr or proc.stdout).strip()}")
        return proc

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        if self.initialized():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        (self.home / "port").write_text(str(_free_port()))
        user = _server_user()
        if user is not None:
            # The server user must reach the home through every parent directory.
            for d in (self.home, self.socket_dir):
                shutil.chown(d, user)
            self.log_file.touch()
            shutil.chown(self.log_file, user)
        self._run(str(self.pg_bin / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "100",
            "shared_buffers": "256MB",
            "max_prepared_transactions": "10",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "logging_collector": "off",
            **dict(self.settings),
        }
        with (self.data_dir / "postgresql.auto.conf").open("a") as f:
            for k, v in conf.items():
                f.write(f"{k} = {v}\n")

    def running(self) -> bool:
        if not self.initialized():
            return False
        return self._run(str(self.pg_bin / "pg_ctl"), "-D", str(self.data_dir), "status", check=False).returncode == 0

    def start(self) -> None:
        self.init()
        if self.running():
            return
        self._run(str(self.pg_bin / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                  "-w", "-t", "60", "start")
        self._wait_ready()
        self._ensure_database(DATABASE)

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._run(str(self.pg_bin / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if subprocess.run([str(self.pg_bin / "pg_isready"), "-h", str(self.socket_dir), "-p", str(self.port)],
                              capture_output=True, check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise ServerError(f"server did not become ready; see {self.log_file}")

    def _ensure_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if conn.execute("select 1 from pg_catalog.pg_database where datname = %s", (name,)).fetchone() is None:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))

    def url(self, dbname: str = DATABASE) -> str:
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.socket_dir}&port={self.port}"

    def tcp_url(self, dbname: str = DATABASE) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)


def local_server(home: Path | None = None) -> LocalServer:
    return LocalServer(home or default_home())
