"""Roles and privileges: a snapshot of what mlops_reader, mlops_writer, mlops_admin and
PUBLIC may do on every object of mlops and mlops_features, compared with
tests/data/privileges.expected (regenerate with PGMLOPS_UPDATE_EXPECTED=1), plus rules that
hold whatever the capabilities add."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ..conftest import ROOT

EXPECTED = ROOT / "tests" / "data" / "privileges.expected"
ROLES = ("mlops_reader", "mlops_writer", "mlops_admin", "public")
WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")

SNAPSHOT = """
with roles(role) as (select unnest(%(roles)s::text[])),
objs as (
  select 'schema' as kind, n.nspname::text as name, n.oid, null::"char" as relkind
    from pg_catalog.pg_namespace n where n.nspname in ('mlops', 'mlops_features')
  union all
  select case c.relkind when 'S' then 'sequence' when 'v' then 'view' when 'm' then 'matview' else 'table' end,
         pg_catalog.format('%%I.%%I', n.nspname, c.relname), c.oid, c.relkind
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where n.nspname in ('mlops', 'mlops_features') and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
  union all
  select 'function', p.oid::regprocedure::text, p.oid, null
    from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
   where n.nspname in ('mlops', 'mlops_features'))
select o.kind, o.name, r.role,
       coalesce((select pg_catalog.string_agg(priv, ',' order by priv) from unnest(
         case o.kind
           when 'schema' then array['USAGE', 'CREATE']
           when 'sequence' then array['USAGE', 'SELECT', 'UPDATE']
           when 'function' then array['EXECUTE']
           else array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'] end) priv
         where case o.kind
           when 'schema' then pg_catalog.has_schema_privilege(r.role, o.oid, priv)
           when 'sequence' then pg_catalog.has_sequence_privilege(r.role, o.oid, priv)
           when 'function' then pg_catalog.has_function_privilege(r.role, o.oid, priv)
           else pg_catalog.has_table_privilege(r.role, o.oid, priv) end), '-') as privs
  from objs o cross join roles r
 order by o.kind, o.name, array_position(%(roles)s::text[], r.role)
"""


def snapshot(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(SNAPSHOT, {"roles": list(ROLES)}).fetchall()
    return [f"{kind}\t{name}\t{role}\t{privs}" for kind, name, role, privs in rows]


@pytest.fixture(scope="module")
def snap(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return snapshot(conn)


def test_snapshot_matches_expected(snap: list[str]) -> None:
    text = "# kind\tobject\trole\tprivileges (GENERATED: PGMLOPS_UPDATE_EXPECTED=1 pytest " \
           "tests/reliability/test_privileges.py)\n" + "\n".join(snap) + "\n"
    if os.environ.get("PGMLOPS_UPDATE_EXPECTED") == "1":
        EXPECTED.parent.mkdir(parents=True, exist_ok=True)
        EXPECTED.write_text(text)
    expected = [line for line in EXPECTED.read_text().splitlines() if line and not line.startswith("#")]
    missing = sorted(set(expected) - set(snap))
    extra = sorted(set(snap) - set(expected))
    shown = "\n".join([f"- {m}" for m in missing[:15]] + [f"+ {x}" for x in extra[:15]])
    assert (missing, extra) == ([], []), "privileges differ from tests/data/privileges.expected " \
        f"(regenerate with PGMLOPS_UPDATE_EXPECTED=1 after review):\n{shown}"


def test_public_has_nothing(snap: list[str]) -> None:
    assert len(snap) >= 4 * 10
    assert [line for line in snap if line.split("\t")[2] == "public" and not line.endswith("\t-")] == []


def test_reader_cannot_write_and_no_role_creates(snap: list[str]) -> None:
    bad = []
    for line in snap:
        kind, _name, role, privs = line.split("\t")
        granted = set(privs.split(","))
        if role == "mlops_reader" and kind == "table" and granted & set(WRITES):
            bad.append(line)
        if role == "mlops_reader" and kind == "sequence" and "UPDATE" in granted:
            bad.append(line)
        if role != "mlops_admin" and kind == "schema" and "CREATE" in granted:
            bad.append(line)
        if role in ("mlops_reader", "mlops_writer") and "TRUNCATE" in granted:
            bad.append(line)
    assert bad == []


def test_reader_writes_are_refused_by_the_server(dsn: str) -> None:
    """Not only the catalog: as mlops_reader every INSERT / DELETE is refused with 42501."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("""
            select pg_catalog.format('%I.%I', n.nspname, c.relname) from pg_catalog.pg_class c
              join pg_catalog.pg_namespace n on n.oid = c.relnamespace
             where n.nspname in ('mlops', 'mlops_features') and c.relkind in ('r', 'p')""").fetchall()]
        assert "mlops.alerts" in tables
        for t in tables:
            for stmt in ("insert into {} default values", "delete from {}"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                    conn.execute("set local role mlops_reader")
                    conn.execute(sql.SQL(stmt).format(sql.SQL(t)))


def test_security_definer_functions_are_locked_down(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("""
            select p.oid::regprocedure::text, pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE'),
                   coalesce((select bool_or(c like 'search\\_path=pg\\_catalog,%%' and c like '%%pg\\_temp')
                               from pg_catalog.unnest(p.proconfig) c), false)
              from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
             where n.nspname in ('mlops', 'mlops_features') and p.prosecdef""").fetchall()
    assert [r for r in rows if r[1] or not r[2]] == []


def test_every_function_kind_is_revoked_from_public(dsn: str) -> None:
    """Aggregates and window functions too (tail.sql revokes functions and procedures)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("""
            select p.oid::regprocedure::text, p.prokind from pg_catalog.pg_proc p
             where p.pronamespace in ('mlops'::regnamespace, 'mlops_features'::regnamespace)
               and pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')""").fetchall()
    assert rows == []


def test_no_user_data_in_unlogged_tables(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("""
            select c.oid::regclass::text, pg_catalog.obj_description(c.oid, 'pg_class')
              from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
             where n.nspname in ('mlops', 'mlops_features') and c.relkind in ('r', 'p')
               and c.relpersistence = 'u'""").fetchall()
    assert [name for name, comment in rows if "cache" not in (comment or "").lower()] == []


# Registry and experiment changes are admin-only (issue 10: the writer cannot move aliases or
# change experiments). Probed by name, so functions that do not exist yet are skipped.
ADMIN_ONLY = ("register_model", "create_model_version", "set_alias", "delete_alias", "rollback",
              "set_promotion_policy", "set_version_status", "create_experiment", "start_experiment",
              "pause_experiment", "set_experiment_traffic", "conclude_experiment", "create_feature_group",
              "create_entity")


def test_writer_and_reader_cannot_change_registry_or_experiments(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("""
            select p.oid::regprocedure::text, r.role
              from pg_catalog.pg_proc p cross join unnest(array['mlops_reader', 'mlops_writer']) r(role)
             where p.pronamespace = 'mlops'::regnamespace and p.proname = any(%s::text[])
               and pg_catalog.has_function_privilege(r.role, p.oid, 'EXECUTE')""", (list(ADMIN_ONLY),)).fetchall()
        present = conn.execute("select count(*) from pg_catalog.pg_proc where pronamespace = 'mlops'::regnamespace "
                               "and proname = any(%s::text[])", (list(ADMIN_ONLY),)).fetchone()
    assert present is not None and present[0] >= 1
    assert rows == []
