"""Dump/restore: a populated database -> pg_dump -Fc -> pg_restore into an empty database
(which runs CREATE EXTENSION, then restores the config-dump data): per-table ordered row
checksums and sequence values identical for every table of mlops and mlops_features. Also
from a database that reached the current version by ALTER EXTENSION UPDATE (column-order
trap: rows are compared as jsonb, so only values matter)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest
from pgmlops.install import available_versions
from pgmlops.server import PG_BIN
from psycopg import sql

from ..conftest import install_mode
from . import capabilities as cap
from .sqlgen import call_everything, functions, sequences, tables
from .test_crash import record


def conninfo(url: str) -> list[str]:
    u = urlparse(url)
    q = parse_qs(u.query)
    return ["-h", q["host"][0], "-p", q["port"][0], "-U", u.username or "postgres", "-d", u.path.lstrip("/")]


# Tables that every capability fills through cap.populate_all (must be non-empty before the dump).
POPULATED = ("mlops.model_aliases", "mlops.alias_events", "mlops.experiment_assignments", "mlops.predictions",
             "mlops.prediction_feedback", "mlops.drift_profiles", "mlops.embedding_cache", "mlops.training_job_queue",
             "mlops_features.rel_group__v1")


def populate(url: str) -> dict[str, int]:
    """Core rows, every capability through its API (aliases and their history, feature history,
    predictions over 4 daily partitions, a running experiment with assignments, a drift profile
    and monitor run, embedding cache and sync rows, a queued job), then every function called
    with sample arguments (fills whatever else it can)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(40):
            conn.execute("select mlops._raise_alert('reltest'::text, %s::text, 'info'::text, 'm'::text, "
                         "pg_catalog.jsonb_build_object('i', %s::integer))", (f"s{i}", i))
        conn.execute("select mlops.resolve_alerts('reltest'::text, 's3'::text)")
        figures = cap.populate_all(conn)
        assert figures["prediction_partitions_with_rows"] >= 3 and figures["assignments"] > 0
        call_everything(conn, [f for f in functions(conn) if not f.name.startswith("_")])
        for t in POPULATED:
            row = conn.execute(sql.SQL("select count(*) from {}").format(sql.SQL(t))).fetchone()
            assert row is not None and row[0] > 0, f"{t} is empty: populate did not reach it"
            figures[t] = int(row[0])
    return figures


def row_checksums(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, str]]:
    out = {}
    for t in tables(conn):
        if t == "mlops._migration":  # the installer's ledger: applied_at is the restore's own time
            row = conn.execute("select pg_catalog.count(*)::bigint, pg_catalog.md5(pg_catalog.string_agg("
                               "name || ':' || sha256, ',' order by name)) from mlops._migration").fetchone()
            assert row is not None
            out[t] = (int(row[0]), str(row[1]))
            continue
        # Built-in rows (the default embedding model) are seeded by CREATE EXTENSION, not restored:
        # their install time differs; every user row must be identical.
        builtin = (" where not (pg_catalog.to_jsonb(x) -> 'tags') @> '{{\"pgmlops_builtin\": true}}'"
                   if t in ("mlops.models", "mlops.model_versions") else "")
        q = sql.SQL("select pg_catalog.count(*)::bigint, pg_catalog.md5(coalesce(pg_catalog.string_agg("
                    "j, E'\\n' order by j), '')) from (select pg_catalog.to_jsonb(x)::text as j from {} x" + builtin
                    + ") s").format(sql.SQL(t))
        row = conn.execute(q).fetchone()
        assert row is not None
        out[t] = (int(row[0]), str(row[1]))
    return out


def dump_restore(src: str, dst: str, tmp_path: Path) -> list[str]:
    dump = tmp_path / "db.dump"
    subprocess.run([str(PG_BIN / "pg_dump"), "-Fc", "-f", str(dump), *conninfo(src)], check=True,
                   capture_output=True, text=True)
    proc = subprocess.run([str(PG_BIN / "pg_restore"), *conninfo(dst), str(dump)],
                          capture_output=True, text=True, check=False)
    return [line for line in proc.stderr.splitlines() if "error" in line.lower()]


def compare(src: str, dst: str, restore_errors: tuple[str, ...] = ()) -> dict[str, Any]:
    with psycopg.connect(src, autocommit=True) as a, psycopg.connect(dst, autocommit=True) as b:
        before, after = row_checksums(a), row_checksums(b)
        assert before["mlops.alerts"][0] >= 40
        assert sorted(before) == sorted(after)
        differ = {t: (before[t][0], after[t][0]) for t in before if before[t] != after[t]}
        assert (list(restore_errors), differ) == ([], {}), \
            f"pg_restore errors {list(restore_errors)}; tables whose rows changed (count before, after): {differ}"
        assert sequences(a) == sequences(b)
        assert a.execute("select mlops.version()").fetchone() == b.execute("select mlops.version()").fetchone()
        want: dict[str, Any] = {}
        if a.execute("select to_regclass('mlops_features.rel_group__v1') is not null").fetchone() == (True,):
            want = cap.invariants(a)
            assert want["max_alias_holders"] == 1 and want["served_differs_from_recorded"] == 0
            assert cap.invariants(b) == want
        return {"tables": len(before), "rows": sum(n for n, _ in before.values()), "tables_differing": len(differ),
                "sequences": len(sequences(a)), **{k: v for k, v in want.items() if k != "assignments_md5"}}


def test_dump_restore_fresh(database_factory: Callable[..., str], tmp_path: Path) -> None:
    src = database_factory("extension", prefix="dump_src")
    populated = populate(src)
    dst = database_factory(None, prefix="dump_dst")
    errors = dump_restore(src, dst, tmp_path)
    record("dump_restore_fresh", **compare(src, dst, tuple(errors)), restore_errors=len(errors), **populated)


@pytest.mark.skipif(len(available_versions()) < 2, reason="no released version to upgrade from")
def test_dump_restore_after_upgrade(database_factory: Callable[..., str], tmp_path: Path) -> None:
    src = database_factory(None, prefix="dump_upg")
    install_mode(src, "extension", python=True, version=available_versions()[0])
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute("alter extension pgmlops update")
        conn.execute("alter extension pgmlops_python update")
    populated = populate(src)
    dst = database_factory(None, prefix="dump_upg_dst")
    errors = dump_restore(src, dst, tmp_path)
    record("dump_restore_upgraded", **compare(src, dst, tuple(errors)), restore_errors=len(errors), **populated)


def test_compare_detects_a_changed_row(database_factory: Callable[..., str]) -> None:
    """The check can fail: a database equals itself, and one changed value is reported."""
    a = database_factory("extension", prefix="cmp_a")
    populate(a)
    compare(a, a)
    with psycopg.connect(a, autocommit=True) as conn:
        before = row_checksums(conn)
        conn.execute("update mlops.alerts set message = 'changed' where subject = 's7'")
        after = row_checksums(conn)
    assert [t for t in before if before[t] != after[t]] == ["mlops.alerts"]
