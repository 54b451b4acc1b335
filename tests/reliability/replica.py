"""A hot standby of a LocalServer on loopback: pg_basebackup -R from the primary, its own
port and socket directory, streaming replication under the same unprivileged server user."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import psycopg
from pgmlops.server import PG_BIN, LocalServer, _free_port, _server_user


def make_standby(primary: LocalServer, home: Path, name: str = "standby1") -> LocalServer:
    """Base backup of ``primary`` into ``home`` (standby.signal + primary_conninfo with
    application_name ``name``, what synchronous_standby_names refers to), started."""
    home.mkdir(parents=True)
    standby = LocalServer(home)
    standby.socket_dir.mkdir()
    (home / "port").write_text(str(_free_port()))
    standby.log_file.touch()
    user = _server_user()
    if user is not None:
        for p in (home, standby.socket_dir, standby.log_file):
            shutil.chown(p, user)
    primary._run(str(PG_BIN / "pg_basebackup"), "-D", str(standby.data_dir), "-R", "-X", "stream", "-c", "fast",
                 "--no-sync", "-d", f"host={primary.socket_dir} port={primary.port} user=postgres")
    with (standby.data_dir / "postgresql.auto.conf").open("a") as f:  # later lines win over the copied ones
        f.write(f"port = {standby.port}\n"
                f"unix_socket_directories = '{standby.socket_dir}'\n"
                f"primary_conninfo = 'host={primary.socket_dir} port={primary.port} user=postgres "
                f"application_name={name}'\n"
                f"cluster_name = '{name}'\n"
                "hot_standby = on\n")
    standby.start()
    return standby


def wait_replayed(primary_url: str, standby_url: str, timeout: float = 60) -> None:
    """Until the standby has replayed everything the primary had written when called."""
    with psycopg.connect(primary_url, autocommit=True) as p:
        row = p.execute("select pg_catalog.pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    target = row[0]
    deadline = time.monotonic() + timeout
    with psycopg.connect(standby_url, autocommit=True) as s:
        while True:
            got = s.execute("select pg_catalog.pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()
            if got == (True,):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"standby did not replay up to {target} within {timeout} s")
            time.sleep(0.05)
