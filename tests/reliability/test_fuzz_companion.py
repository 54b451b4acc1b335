"""sqlsmith fuzzing as the application role against a populated database (0 backend
crashes in the server log), and companion isolation: the core installs and works on a
PostgreSQL installation that has no PL/Python at all (scripts/build-nopython-pg.sh), by
CREATE EXTENSION pgmlops alone and by the bundled install with python=False."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pgmlops
import psycopg
import pytest
from pgmlops.server import LocalServer
from psycopg import sql

from ..conftest import ROOT, Cluster
from .sqlgen import call_everything, call_sql, functions
from .test_crash import record
from .test_dump_restore import populate

APP_ROLE = "rel_app"
NOPY_ROOT = Path(os.environ.get("PGMLOPS_NOPY_ROOT", "/var/lib/pgmlops-deps/pg15-nopython"))
NOPY_BIN = NOPY_ROOT / "usr/lib/postgresql/15/bin"
NOPY_EXT = NOPY_ROOT / "usr/share/postgresql/15/extension"


def python_function_names(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute("""
        select p.proname::text from pg_catalog.pg_proc p join pg_catalog.pg_language l on l.oid = p.prolang
         where p.pronamespace = 'mlops'::regnamespace and l.lanname = 'plpython3u'""").fetchall()
    return {r[0] for r in rows}


@pytest.fixture(scope="module")
def nopython_cluster() -> Iterator[Cluster]:
    """A cluster of the PostgreSQL installation without PL/Python (never skipped: missing = failure)."""
    assert (NOPY_BIN / "postgres").exists(), f"{NOPY_BIN} missing: run scripts/install-system-deps.sh"
    ours = sorted((ROOT / "extension").glob("pgmlops*.sql")) + sorted((ROOT / "extension").glob("pgmlops*.control"))
    if os.access(NOPY_EXT, os.W_OK):  # root (CI, dev loop): refresh our scripts after a rebuild
        for f in ours:
            shutil.copyfile(f, NOPY_EXT / f.name)
    stale = [f.name for f in ours
             if not (NOPY_EXT / f.name).exists() or not filecmp.cmp(f, NOPY_EXT / f.name, shallow=False)]
    assert stale == [], f"{NOPY_EXT} has stale pgmlops files {stale}: run scripts/install-system-deps.sh"
    base = Path(tempfile.mkdtemp(prefix="pgmlops-nopy-", dir=os.environ.get("PGMLOPS_TEST_TMP", "/tmp")))
    base.chmod(0o755)
    server = LocalServer(base / "cluster", settings=(("fsync", "off"), ("max_connections", "30")), pg_bin=NOPY_BIN)
    server.start()
    try:
        yield Cluster(server)
    finally:
        server.destroy()
        shutil.rmtree(base, ignore_errors=True)


def test_nopython_installation_has_no_plpython(nopython_cluster: Cluster) -> None:
    """The isolation below means something only if PL/Python really cannot be loaded there."""
    with psycopg.connect(nopython_cluster.url("postgres"), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="plpython3u"):
            conn.execute("create extension plpython3u")
        with pytest.raises(psycopg.errors.UndefinedFile):
            conn.execute("load 'plpython3'")


@pytest.mark.parametrize("mode", ["extension", "bundled"])
def test_core_works_without_python(mode: str, dsn: str, nopython_cluster: Cluster) -> None:
    with psycopg.connect(dsn, autocommit=True) as full:
        py_names = python_function_names(full)
    assert py_names, "pgmlops_python has no PL/Python function: nothing to isolate"
    name = nopython_cluster.new_database(f"nopy_{mode}", mode, python=False)
    url = nopython_cluster.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        if mode == "extension":
            # The companion cannot be added here: it needs a language this server lacks.
            with pytest.raises(psycopg.Error, match="plpython3u"):
                conn.execute("create extension pgmlops_python cascade")
        assert conn.execute("select count(*) from pg_catalog.pg_language where lanname like 'plpython%'"
                            ).fetchone() == (0,)
        info = conn.execute("select mlops.info()").fetchone()
        assert info is not None and info[0]["pgmlops_python"] is None and info[0]["plpython"] is False
        errors: list[str] = []
        funcs = functions(conn)
        for f in funcs:
            for nulls in (False, True):
                try:
                    with conn.transaction():
                        conn.execute("set local statement_timeout = 3000")
                        conn.execute(call_sql(f, nulls))
                except psycopg.Error as exc:
                    errors.append(f"{f.signature}: {exc.diag.message_primary}")
        # A core function may refuse politely, but never by calling a PL/Python function that is absent.
        missing = [e for e in errors if ("does not exist" in e and any(n in e.split(":", 1)[1] for n in py_names))
                   or "plpython" in e]
        assert missing == []
        assert len(funcs) >= 5
    if mode == "bundled":
        with pytest.raises(Exception, match=r"(?i)plpython"):
            pgmlops.install(url, python=True)
        with psycopg.connect(url, autocommit=True) as conn:
            # The failed companion install left the core as it was.
            version = (ROOT / "sql/VERSION").read_text().strip()
            assert conn.execute("select (mlops.info())->>'pgmlops'").fetchone() == (version,)


@pytest.mark.slow
def test_sqlsmith_no_backend_crash(cluster: Cluster, database_factory: Callable[..., str]) -> None:
    assert shutil.which("sqlsmith"), "sqlsmith missing: run scripts/install-system-deps.sh"
    url = database_factory("extension", prefix="fuzz")
    populate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("""do $$ begin
            if not exists (select from pg_catalog.pg_roles where rolname = {r}) then
              create role {i} login;
            end if; end $$""").format(r=sql.Literal(APP_ROLE), i=sql.Identifier(APP_ROLE)))
        conn.execute(sql.SQL("grant mlops_writer to {}").format(sql.Identifier(APP_ROLE)))
        # Keep the fuzzer's own calls bounded.
        conn.execute(sql.SQL("alter role {} set statement_timeout = '2s'").format(sql.Identifier(APP_ROLE)))
    u = urlparse(url)
    q = parse_qs(u.query)
    target = f"host={q['host'][0]} port={q['port'][0]} dbname={u.path.lstrip('/')} user={APP_ROLE}"
    log = cluster.server.log_file
    start = log.stat().st_size
    proc = subprocess.run(["sqlsmith", f"--target={target}", "--seed=20261123", "--max-queries=3000",
                           "--exclude-catalog"], capture_output=True, text=True, check=False, timeout=600)
    with log.open("rb") as f:
        f.seek(start)
        server_log = f.read().decode(errors="replace")
    crashes = [line for line in server_log.splitlines() if "terminated by signal" in line]
    assert crashes == [], crashes
    assert proc.returncode == 0, proc.stderr[-2000:]  # it ran to --max-queries (connected, generated)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("select mlops.version()").fetchone() is not None
        stats = call_everything(conn, functions(conn)[:3])
    record("sqlsmith", queries=3000, seed=20261123, crashes=len(crashes), exit=proc.returncode,
           calls_after=stats["calls"])
