"""kill -9 durability: 3 writer processes record what the server acknowledged; cycles
alternate kill -9 of a writer's backend and of the postmaster; after each restart
acknowledged-but-missing must be 0, and pg_amcheck --heapallindexed is clean at the end.
The fast variant (2 cycles) runs in make test, 20 cycles under make reliability."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgmlops.server import PG_BIN, LocalServer
from psycopg import sql

from . import crashlib

RESULTS = Path(os.environ.get("PGMLOPS_RELIABILITY_RESULTS", "/tmp/pgmlops-reliability-results.jsonl"))


def record(name: str, **figures: Any) -> None:
    """Appends a figure for docs/reliability.md."""
    with RESULTS.open("a") as f:
        f.write(json.dumps({"test": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}) + "\n")


def amcheck(server: LocalServer, dbname: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PG_BIN / "pg_amcheck"), "--heapallindexed", "--install-missing", "-h",
                           str(server.socket_dir), "-p", str(server.port), "-U", "postgres", dbname],
                          capture_output=True, text=True, check=False)


def verify(url: str, ack_dir: Path) -> tuple[dict[str, str], list[str]]:
    """Acknowledged and lost rows once the server accepts connections again (the postmaster may
    start crash recovery just after a first successful connection: retry then)."""
    for _ in range(20):
        crashlib.wait_ready(url)
        acks = crashlib.acknowledged(ack_dir)
        try:
            return acks, crashlib.missing(url, acks)
        except psycopg.OperationalError:
            time.sleep(0.5)
    raise AssertionError("server did not stay up after restart")


def run_cycles(server: LocalServer, tmp_path: Path, cycles: int) -> dict[str, Any]:
    dbname = f"crash_{cycles}"
    url = server.url(dbname)
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension pgmlops cascade")
    ack_dir = tmp_path / "acks"
    ack_dir.mkdir()
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    kinds = crashlib.prepare(url)
    procs = [ctx.Process(target=crashlib.writer, args=(url, kind, str(ack_dir / f"{kind}.ack"), stop), daemon=True)
             for kind in kinds]
    for p in procs:
        p.start()
    rng = random.Random(20261123)
    worst = 0
    try:
        for cycle in range(cycles):
            before = len(crashlib.acknowledged(ack_dir))
            deadline = time.monotonic() + 30
            while len(crashlib.acknowledged(ack_dir)) < before + 30 and time.monotonic() < deadline:
                time.sleep(0.05)  # let the writers make progress before the fault
            assert all(p.is_alive() for p in procs)
            if cycle % 2 == 0:
                assert crashlib.kill_backend(url, rng) is not None, "no writer backend to kill"
            else:
                crashlib.kill_postmaster(server)
                server.start()
            acks, lost = verify(url, ack_dir)
            worst = max(worst, len(lost))
            assert lost == [], f"cycle {cycle}: acknowledged but missing: {lost[:10]}"
    finally:
        stop.set()
        for p in procs:
            p.join(20)
            if p.is_alive():
                p.kill()
    acks = crashlib.acknowledged(ack_dir)
    assert crashlib.missing(url, acks) == []
    check = amcheck(server, dbname)
    assert check.returncode == 0 and check.stdout.strip() == "", check.stdout + check.stderr
    return {"cycles": cycles, "acknowledged": len(acks), "missing": worst, "writers": ",".join(kinds)}


def test_kill9_durability_fast(private_server: LocalServer, tmp_path: Path) -> None:
    figures = run_cycles(private_server, tmp_path, cycles=2)
    assert figures["acknowledged"] > 60
    record("kill9_fast", **figures)


@pytest.mark.slow
def test_kill9_durability_20_cycles(private_server: LocalServer, tmp_path: Path) -> None:
    figures = run_cycles(private_server, tmp_path, cycles=20)
    assert figures["acknowledged"] > 600
    record("kill9_20_cycles", **figures)


def test_missing_detects_a_lost_row(private_server: LocalServer) -> None:
    """The verifier can fail: an acknowledged row deleted behind its back is reported."""
    url = private_server.url("pgmlops")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension pgmlops cascade")
        crashlib._alert(conn, "kept")
        crashlib._alert(conn, "lost")
        conn.execute("delete from mlops.alerts where subject = 'lost'")
    assert crashlib.missing(url, {"kept": "open", "lost": "open"}) == ["lost"]


@pytest.mark.slow
def test_kill9_of_a_plpython_backend_loses_no_core_rows(private_server: LocalServer) -> None:
    """Companion isolation: a backend killed inside PL/Python (e.g. by the OOM killer) takes the
    whole cluster through crash recovery; committed core rows survive and both extensions work."""
    import threading

    url = private_server.url("pgmlops")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension if not exists pgmlops cascade")
        conn.execute("create extension if not exists pgmlops_python cascade")
        for i in range(50):
            crashlib._alert(conn, f"py_{i}")
        pid_row = None

        def sleeper() -> None:
            with contextlib.suppress(psycopg.Error), psycopg.connect(url, autocommit=True,
                                                                     application_name="reltest_py") as c:
                c.execute("do language plpython3u $$ import time; time.sleep(60) $$")

        t = threading.Thread(target=sleeper, daemon=True)
        t.start()
        deadline = time.monotonic() + 20
        while pid_row is None and time.monotonic() < deadline:
            pid_row = conn.execute("select pid from pg_catalog.pg_stat_activity where application_name = 'reltest_py' "
                                   "and state = 'active'").fetchone()
            time.sleep(0.1)
    assert pid_row is not None
    os.kill(int(pid_row[0]), signal.SIGKILL)
    t.join(30)
    acks = {f"py_{i}": "open" for i in range(50)}
    lost: list[str] = []
    crashlib.wait_ready(url)
    for _ in range(20):
        try:
            lost = crashlib.missing(url, acks)
            break
        except psycopg.OperationalError:
            time.sleep(0.5)
            crashlib.wait_ready(url)
    assert lost == []
    with psycopg.connect(url, autocommit=True) as conn:
        info = conn.execute("select mlops.python_info()").fetchone()
        assert info is not None and info[0]["python"]
    record("kill9_plpython_backend", committed=50, missing=len(lost))
