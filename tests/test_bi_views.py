"""Every view in schema mlops is a BI view: simple column types only, a timestamptz column
named ``time``, COMMENT ON VIEW and on every column (DESIGN.md, "BI views").

The checks read the installed catalog, so views added by any capability are covered
without editing this file."""

from __future__ import annotations

from typing import Any

import psycopg
import psycopg.sql
import pytest

# Column types a BI tool (Superset, Grafana) handles as plain values.
SIMPLE_TYPES = {
    "bigint", "integer", "smallint", "numeric", "real", "double precision", "boolean", "text",
    "character varying", "character", "date", "timestamp with time zone", "timestamp without time zone",
    "interval", "uuid", "name",
}

VIEW_COLUMNS = """
    select c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), t.typtype, t.typcategory,
           pg_catalog.col_description(c.oid, a.attnum), a.atttypid = 'pg_catalog.timestamptz'::regtype
      from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      join pg_catalog.pg_type t on t.oid = a.atttypid
     where n.nspname = 'mlops' and c.relkind in ('v', 'm')
     order by c.relname, a.attnum"""


def bi_views(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    views: dict[str, list[tuple[Any, ...]]] = {}
    for row in conn.execute(VIEW_COLUMNS).fetchall():
        views.setdefault(row[0], []).append(row[1:])
    return views


def column_problems(columns: list[tuple[Any, ...]]) -> list[str]:
    """Rule violations of one view's columns (empty when the view is a good BI view)."""
    problems = []
    for name, type_name, typtype, category, comment, _ in columns:
        if category == "A" or typtype in ("c", "p") or type_name.startswith(("json", "vector", "halfvec",
                                                                              "sparsevec")):
            problems.append(f"column {name} has non-simple type {type_name}")
        elif type_name.split("(")[0] not in SIMPLE_TYPES and typtype != "d":
            problems.append(f"column {name} has type {type_name} that BI tools may not handle")
        if not comment:
            problems.append(f"column {name} has no COMMENT")
    names = {c[0]: c for c in columns}
    if "time" not in names:
        problems.append("no column named time")
    elif not names["time"][5]:
        problems.append(f"column time is {names['time'][1]}, not timestamptz")
    return problems


def test_there_are_bi_views(conn: psycopg.Connection[Any]) -> None:
    assert "alert_log" in bi_views(conn)


def test_every_view_is_a_bi_view(conn: psycopg.Connection[Any]) -> None:
    failures = []
    comments = dict(conn.execute("""
        select c.relname, pg_catalog.obj_description(c.oid, 'pg_class') from pg_catalog.pg_class c
         where c.relnamespace = 'mlops'::regnamespace and c.relkind in ('v', 'm')""").fetchall())
    for view, columns in bi_views(conn).items():
        problems = column_problems(columns)
        if not comments.get(view):
            problems.append("no COMMENT ON VIEW")
        failures += [f"mlops.{view}: {p}" for p in problems]
    assert not failures, "BI view rule violations:\n" + "\n".join(failures)


@pytest.mark.parametrize(("ddl", "expected"), [
    ("create view mlops.zz_bad as select pg_catalog.now() as time, '{}'::jsonb as j", "non-simple type jsonb"),
    ("create view mlops.zz_bad as select pg_catalog.now() as time, array[1] as a", "non-simple type integer[]"),
    ("create view mlops.zz_bad as select pg_catalog.now() as t, 1 as a", "no column named time"),
    ("create view mlops.zz_bad as select 1 as time", "column time is integer, not timestamptz"),
    ("create view mlops.zz_bad as select a.created_at as time, a from mlops.alerts a", "non-simple type mlops.alerts"),
])
def test_checker_catches_violations(conn: psycopg.Connection[Any], ddl: str, expected: str) -> None:
    """The rule checker itself can fail: plant a bad view in a rolled-back transaction."""
    with conn.transaction(force_rollback=True):
        conn.execute(ddl)
        conn.execute("comment on view mlops.zz_bad is 'x'")
        problems = column_problems(bi_views(conn)["zz_bad"])
    assert any(expected in p for p in problems), problems
    assert any("no COMMENT" in p for p in problems), problems


def test_vector_column_is_rejected(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute("create view mlops.zz_vec as select pg_catalog.now() as time, '[1,2]'::vector as v")
        problems = column_problems(bi_views(conn)["zz_vec"])
    assert any("non-simple type vector" in p for p in problems), problems


def test_mlops_reader_can_read_every_view(conn: psycopg.Connection[Any]) -> None:
    """BI users hold mlops_reader only: every view (and whatever it calls) must work for them."""
    failures = []
    for view in bi_views(conn):
        with conn.transaction(force_rollback=True):
            conn.execute("set local role mlops_reader")
            try:
                with conn.transaction():
                    conn.execute(psycopg.sql.SQL("select * from mlops.{} limit 1").format(psycopg.sql.Identifier(view)))
            except psycopg.errors.InsufficientPrivilege as exc:
                failures.append(f"mlops.{view}: {exc.diag.message_primary}")
    assert not failures, "mlops_reader cannot read:\n" + "\n".join(failures)
