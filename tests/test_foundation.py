"""Foundation: generated scripts are current, three install modes agree, security baseline,
bad input to install, the local cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pgmlops
import psycopg
import pytest
from pgmlops.install import available_versions, bundled_script

from .catalog import snapshot
from .conftest import ROOT, Cluster, install_mode


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgmlops.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False, cwd=ROOT)


def test_generated_scripts_are_current() -> None:
    proc = subprocess.run([sys.executable, "sql/build.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_build_refuses_edited_frozen_file(tmp_path: Path) -> None:
    frozen = (ROOT / "sql" / "frozen.txt").read_text().splitlines()
    entry = next(line for line in frozen if " incremental/" in line)
    name = entry.split()[1].split("/", 1)[1]
    copy = tmp_path / "repo"
    subprocess.run(["cp", "-r", str(ROOT / "sql"), str(copy / "sql")] if copy.mkdir() is None else [], check=True)
    (copy / "pyclient" / "pgmlops").mkdir(parents=True)
    subprocess.run(["cp", "-r", str(ROOT / "pyclient" / "pgmlops" / "sql"), str(copy / "pyclient" / "pgmlops")],
                   check=True)
    target = copy / "sql" / "incremental" / name
    target.write_text(target.read_text() + "\n-- edited\n")
    proc = subprocess.run([sys.executable, str(copy / "sql" / "build.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "frozen" in proc.stderr and name in proc.stderr


def test_three_install_modes_give_identical_catalogs(database_factory: Callable[..., str]) -> None:
    snaps = {mode: snapshot(database_factory(mode, prefix=f"mode_{mode}")) for mode in ("extension", "bundled",
                                                                                       "alembic")}
    assert snaps["extension"]["functions"], "nothing installed"
    for mode in ("bundled", "alembic"):
        for part, rows in snaps["extension"].items():
            assert snaps[mode][part] == rows, f"{mode} differs from extension in {part}"


@pytest.mark.parametrize("mode", ["extension", "bundled"])
def test_upgrade_from_every_release_equals_fresh_install(mode: str, database_factory: Callable[..., str]) -> None:
    fresh = snapshot(database_factory(mode, prefix="fresh"))
    for old in available_versions()[:-1]:
        dsn = database_factory(None, prefix=f"upg_{old.replace('.', '_')}")
        install_mode(dsn, mode, python=True, version=old)
        if mode == "extension":
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("alter extension pgmlops update")
                conn.execute("alter extension pgmlops_python update")
        else:
            pgmlops.install(dsn, python=True)
        upgraded = snapshot(dsn)
        for part, rows in fresh.items():
            if part == "columns":  # upgrades may append columns in another order; compare as sets
                assert sorted(r[:1] + r[2:] for r in upgraded[part]) == sorted(r[:1] + r[2:] for r in rows)
            else:
                assert upgraded[part] == rows, f"upgrade from {old} differs in {part}"


def test_every_function_pins_search_path(conn: psycopg.Connection[object]) -> None:
    rows = conn.execute("""
        select p.oid::regprocedure::text, p.proconfig
          from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'mlops' and p.prokind <> 'a'""").fetchall()
    # Aggregates take no SET clause; their state and final functions are checked like any function.
    assert len(rows) >= 5
    unpinned = [sig for sig, cfg in rows
                if not cfg or not any(c.startswith("search_path=pg_catalog,") and c.endswith("pg_temp") for c in cfg)]
    assert unpinned == []


def test_every_column_has_a_comment(conn: psycopg.Connection[object]) -> None:
    # BI tools (Superset) list tables and views and show column comments as descriptions.
    # Partitions of mlops.predictions are made at run time and inherit nothing to show.
    rows = conn.execute("""
        select c.oid::regclass::text, a.attname::text
          from pg_catalog.pg_class c
          join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
         where c.relnamespace = 'mlops'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
           and not c.relispartition
           and coalesce(pg_catalog.btrim(pg_catalog.col_description(c.oid, a.attnum)), '') = ''
         order by 1, a.attnum""").fetchall()
    checked = conn.execute("""
        select count(*) from pg_catalog.pg_class
         where relnamespace = 'mlops'::regnamespace and relkind in ('r', 'p', 'v', 'm')""").fetchone()
    assert checked is not None and checked[0] >= 10, "no tables or views in schema mlops"
    assert rows == [], f"{len(rows)} columns without a comment: " + ", ".join(f"{t}.{c}" for t, c in rows)
    schemas = conn.execute("""select n.nspname::text, pg_catalog.obj_description(n.oid, 'pg_namespace')
                                 from pg_catalog.pg_namespace n where n.nspname in ('mlops', 'mlops_features')
                                order by 1""").fetchall()
    assert [s for s, comment in schemas if comment] == ["mlops", "mlops_features"], schemas


def test_nothing_in_public_and_public_has_no_rights(conn: psycopg.Connection[object]) -> None:
    owned = conn.execute("""
        select d.objid from pg_catalog.pg_depend d join pg_catalog.pg_extension e on e.oid = d.refobjid
          join pg_catalog.pg_class c on c.oid = d.objid and d.classid = 'pg_catalog.pg_class'::regclass
         where e.extname like 'pgmlops%' and c.relnamespace = 'public'::regnamespace""").fetchall()
    assert owned == []
    callable_by_public = conn.execute("""
        select p.oid::regprocedure::text from pg_catalog.pg_proc p
         where p.pronamespace = 'mlops'::regnamespace
           and pg_catalog.has_function_privilege('public', p.oid, 'execute')""").fetchall()
    assert callable_by_public == []
    for role in ("mlops_reader", "mlops_writer", "mlops_admin"):
        assert conn.execute("select 1 from pg_catalog.pg_roles where rolname = %s", (role,)).fetchone()


def test_info_reports_versions(client: pgmlops.Client) -> None:
    info = client.info()
    assert info["pgmlops"] == available_versions()[-1] == client.version()
    assert info["pgvector"].startswith("0.8")
    assert info["plpython"] is True and info["pgmlops_python"] == info["pgmlops"]
    assert info["install_mode"] == "extension"


def test_bundled_install_refuses_extension_database(dsn: str) -> None:
    with pytest.raises(pgmlops.InstallError, match="already installed here as an extension"):
        pgmlops.install(dsn)


def test_create_extension_refuses_bundled_database(database_factory: Callable[..., str]) -> None:
    dsn = database_factory("bundled", prefix="bundled_then_ext")
    before = snapshot(dsn)
    expected = "does not belong to extension pgmlops"
    with psycopg.connect(dsn, autocommit=True) as conn, pytest.raises(psycopg.Error, match=expected):
        conn.execute("create extension pgmlops")
    assert snapshot(dsn) == before


def test_bundled_script_without_pgvector_fails_and_leaves_nothing(database_factory: Callable[..., str]) -> None:
    dsn = database_factory(None, prefix="novector")
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedFile, match="requires the pgvector extension"), conn.transaction():
            conn.execute("select pg_catalog.set_config('pgmlops.install_mode', 'bundled', true)")
            conn.execute(bundled_script().encode())
        assert conn.execute("select count(*) from pg_catalog.pg_namespace where nspname like 'mlops%'"
                            ).fetchone() == (0,)


def test_script_refuses_to_run_outside_an_installer(database_factory: Callable[..., str]) -> None:
    dsn = database_factory(None, prefix="direct")
    with psycopg.connect(dsn, autocommit=True) as conn, pytest.raises(psycopg.Error, match="not directly"):
        conn.execute("create extension vector")
        conn.execute(bundled_script().encode())


def test_cli_install_unreachable_dsn_is_one_clear_line() -> None:
    proc = run_cli("install", "--dsn", "postgresql://nobody@127.0.0.1:1/nowhere")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot connect"), proc.stderr


def test_cli_install_into_extension_database_fails(dsn: str) -> None:
    proc = run_cli("install", "--dsn", dsn)
    assert proc.returncode == 1 and "already installed here as an extension" in proc.stderr


def test_cli_install_json_upgrades_a_bundled_database(database_factory: Callable[..., str]) -> None:
    import json

    dsn = database_factory("bundled", prefix="cli_json")
    proc = run_cli("install", "--json", "--dsn", dsn)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"installed": available_versions()[-1]}


def test_cli_info_json(dsn: str) -> None:
    import json

    proc = run_cli("info", "--json", "--dsn", dsn)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["pgmlops"] == available_versions()[-1]


def test_local_server_lifecycle(tmp_path_factory: pytest.TempPathFactory, cluster: Cluster) -> None:
    home = Path(cluster.server.home).parent / "local-home"
    env = {"PGMLOPS_HOME": str(home)}
    try:
        started = run_cli("server", "start", env=env)
        assert started.returncode == 0, started.stderr
        url = run_cli("server", "url", env=env).stdout.strip()
        with psycopg.connect(url) as conn:
            info = conn.execute("select mlops.info()").fetchone()
            assert info is not None and info[0]["pgmlops_python"] is not None
            assert conn.execute("show listen_addresses").fetchone() == ("127.0.0.1",)
        assert run_cli("info", "--json", env={**env, "PGMLOPS_DSN": "", "DATABASE_URL": ""}).returncode == 0
        assert run_cli("server", "status", env=env).returncode == 0
        assert run_cli("server", "stop", env=env).returncode == 0
        assert run_cli("server", "status", env=env).returncode == 3
    finally:
        run_cli("server", "stop", env=env)
        subprocess.run(["rm", "-rf", str(home)], check=False)
