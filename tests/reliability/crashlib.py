"""kill -9 durability: writer processes that record what the server acknowledged, and the
fault injector (kill -9 of a backend, or of the postmaster and its children)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import psycopg
from pgmlops.server import LocalServer

SOURCE = "reltest"


def _alert(conn: psycopg.Connection[Any], subject: str) -> None:
    conn.execute("select mlops._raise_alert(%s::text, %s::text, 'info'::text, 'crash test'::text, '{}'::jsonb)",
                 (SOURCE, subject))


def _write_single(conn: psycopg.Connection[Any], key: str) -> list[str]:
    _alert(conn, key)
    return [f"open\t{key}"]


def _write_batch(conn: psycopg.Connection[Any], key: str) -> list[str]:
    with conn.transaction():  # three rows, one commit: all or nothing
        for i in range(3):
            _alert(conn, f"{key}_{i}")
    return [f"open\t{key}_{i}" for i in range(3)]


def _write_resolve(conn: psycopg.Connection[Any], key: str) -> list[str]:
    _alert(conn, key)
    conn.execute("select mlops.resolve_alerts(%s::text, %s::text)", (SOURCE, key))
    return [f"resolved\t{key}"]


def _write_alias(conn: psycopg.Connection[Any], key: str) -> list[str]:
    version = 1 + int(key.rsplit("_", 1)[1]) % 2
    row = conn.execute("select mlops.set_alias(model => 'crash_m', alias => 'champion', version => %s::integer)",
                       (version,)).fetchone()
    return [f"event\t{row[0]}"] if row and row[0] is not None else []


def _write_prediction(conn: psycopg.Connection[Any], key: str) -> list[str]:
    conn.execute("select mlops.log_prediction(model => 'crash_m', request_id => %s::text, version => 1, "
                 "score => 0.5::float8)", (key,))
    return [f"prediction\t{key}"]


WRITERS: dict[str, Callable[[psycopg.Connection[Any], str], list[str]]] = {
    "single": _write_single, "batch": _write_batch, "resolve": _write_resolve,
    "alias": _write_alias, "prediction": _write_prediction}
CORE_WRITERS = ("single", "batch", "resolve")
# Capability writers run when their function exists (probed by name: signatures still move).
OPTIONAL: dict[str, str] = {"alias": "set_alias", "prediction": "log_prediction"}


def prepare(url: str) -> list[str]:
    """Core writers plus the capability writers whose functions exist; sets up their model."""
    kinds = list(CORE_WRITERS)
    with psycopg.connect(url, autocommit=True) as conn:
        have = {k for k, name in OPTIONAL.items()
                if conn.execute("select exists (select from pg_catalog.pg_proc where proname = %s::text "
                                "and pronamespace = 'mlops'::regnamespace)", (name,)).fetchone() == (True,)}
        if have:
            try:
                conn.execute("select mlops.register_model(name => 'crash_m', if_not_exists => true)")
                for b in (b"\x01", b"\x02"):
                    conn.execute("select mlops.create_model_version(model => 'crash_m', artifact => %s::bytea)", (b,))
                for k in sorted(have):
                    WRITERS[k](conn, f"{k}_probe_0")  # must work before faults, else skip it
                    kinds.append(k)
            except psycopg.Error:
                pass
    return kinds


def writer(url: str, kind: str, ack_path: str, stop: Event) -> None:
    """Loops until ``stop``: writes, and appends to ack_path only what a commit acknowledged."""
    n = 0
    conn: psycopg.Connection[Any] | None = None
    with open(ack_path, "a", buffering=1) as acks:
        while not stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(url, autocommit=True, connect_timeout=5,
                                           application_name=f"reltest_writer_{kind}")
                n += 1
                for line in WRITERS[kind](conn, f"{kind}_{os.getpid()}_{n}"):
                    acks.write(line + "\n")
            except psycopg.Error:
                conn = None
                time.sleep(0.05)
    if conn is not None and not conn.closed:
        conn.close()


def acknowledged(ack_dir: Path) -> dict[str, str]:
    got: dict[str, str] = {}
    for f in ack_dir.glob("*.ack"):
        for line in f.read_text().splitlines():
            if line.count("\t") == 1:
                state, key = line.split("\t")
                if got.get(key) != "resolved":
                    got[key] = state
    return got


def missing(url: str, acks: dict[str, str]) -> list[str]:
    """Acknowledged-but-missing rows (or acknowledged resolutions that were lost)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows: dict[str, bool] = dict(conn.execute(
            "select subject, resolved_at is not null from mlops.alerts where source = %s::text", (SOURCE,)).fetchall())
        for state, query in (("event", "select id::text from mlops.alias_events"),
                             ("prediction", "select request_id from mlops.predictions")):
            if any(s == state for s in acks.values()):
                rows.update((r[0], True) for r in conn.execute(query).fetchall())
    return sorted(k for k, state in acks.items() if k not in rows or (state == "resolved" and not rows[k]))


def backend_pids(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute("select pid from pg_catalog.pg_stat_activity "
                                           "where application_name like 'reltest_writer%'").fetchall()]


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_postmaster(server: LocalServer) -> int:
    """kill -9 of the postmaster, then of its orphaned children (as a machine crash would)."""
    pm = int((server.data_dir / "postmaster.pid").read_text().splitlines()[0])
    kids = _children(pm)
    os.kill(pm, signal.SIGKILL)
    for pid in kids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in [pm, *kids]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pm


def kill_backend(url: str, rng: random.Random) -> int | None:
    pids = backend_pids(url)
    if not pids:
        return None
    pid = rng.choice(pids)
    os.kill(pid, signal.SIGKILL)
    return pid


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
                conn.execute("select 1 from mlops.alerts limit 1")
                return
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
