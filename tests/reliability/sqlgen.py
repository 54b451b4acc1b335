"""Generic helpers of the reliability suite: the catalog of what pgmlops installed, sample
arguments for any function signature, and per-table checksums. Generic over whatever the
capabilities add, so the suite keeps working as they land."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

SCHEMAS = ("mlops", "mlops_features")

# Sample literal per type (cast to the type by the caller). Unknown types get NULL.
SAMPLES: dict[str, str] = {
    "text": "reltest", "character varying": "reltest", "name": "reltest", "citext": "reltest",
    "smallint": "1", "integer": "1", "bigint": "1", "numeric": "0.5", "real": "0.5", "double precision": "0.5",
    "boolean": "true", "jsonb": '{"a": 1}', "json": '{"a": 1}', "uuid": "00000000-0000-0000-0000-000000000001",
    "timestamp with time zone": "2026-01-01 00:00:00+00", "timestamp without time zone": "2026-01-01 00:00:00",
    "date": "2026-01-01", "interval": "1 hour", "bytea": "\\x00", "regclass": "mlops.alerts",
    "vector": "[1,2,3]", "text[]": "{reltest}", "character varying[]": "{reltest}", "integer[]": "{1,2}",
    "bigint[]": "{1,2}", "double precision[]": "{0.5,1.5}", "real[]": "{0.5,1.5}", "numeric[]": "{0.5,1.5}",
    "jsonb[]": '{"{}"}', "boolean[]": "{true}", "vector[]": '{"[1,2,3]"}',
}


@dataclass(frozen=True)
class Func:
    oid: int
    schema: str
    name: str
    argtypes: tuple[str, ...]
    required: int
    kind: str  # f function, p procedure
    signature: str


def functions(conn: psycopg.Connection[Any], schemas: tuple[str, ...] = ("mlops",)) -> list[Func]:
    rows = conn.execute("""
        select p.oid::bigint, n.nspname::text, p.proname::text,
               coalesce((select pg_catalog.array_agg(pg_catalog.format_type(t, null) order by i)
                           from pg_catalog.unnest(p.proargtypes::oid[]) with ordinality u(t, i)), '{}'),
               p.pronargs - p.pronargdefaults, p.prokind::text, p.oid::regprocedure::text
          from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
         where n.nspname = any(%s::text[]) and p.prokind in ('f', 'p')
           and not exists (select from pg_catalog.pg_type t where t.oid = p.prorettype and t.typname = 'trigger')
           and not (p.prorettype = 'pg_catalog.event_trigger'::pg_catalog.regtype)
         order by 7""", (list(schemas),)).fetchall()
    return [Func(r[0], r[1], r[2], tuple(r[3]), r[4], r[5], r[6]) for r in rows]


def call_sql(f: Func, nulls: bool) -> sql.Composed:
    """``select schema.f(arg::type, ...)`` (or ``call``) with required args only."""
    args = []
    for t in f.argtypes[: f.required]:
        value = None if nulls or t == "anyelement" or t.startswith("any") else SAMPLES.get(t)
        cast = "text" if t.startswith("any") else t
        args.append(sql.SQL("{}::{}").format(sql.Literal(value), sql.SQL(cast)))
    target = sql.Identifier(f.schema, f.name)
    verb = sql.SQL("call" if f.kind == "p" else "select")
    return sql.SQL("{} {}({})").format(verb, target, sql.SQL(", ").join(args))


def call_everything(conn: psycopg.Connection[Any], funcs: list[Func], timeout_ms: int = 3000) -> dict[str, int]:
    """Calls every function twice (sample arguments, then NULLs); errors are allowed and counted."""
    stats = {"calls": 0, "errors": 0}
    conn.execute(f"set statement_timeout = {int(timeout_ms)}")
    for f in funcs:
        for nulls in (False, True):
            stats["calls"] += 1
            try:
                with conn.transaction():
                    conn.execute(call_sql(f, nulls)).fetchall() if f.kind == "f" else conn.execute(call_sql(f, nulls))
            except psycopg.Error:
                stats["errors"] += 1
    conn.execute("reset statement_timeout")
    return stats


def tables(conn: psycopg.Connection[Any]) -> list[str]:
    """Every ordinary/partitioned table of pgmlops (leaf partitions included)."""
    rows = conn.execute("""
        select pg_catalog.format('%%I.%%I', n.nspname, c.relname) from pg_catalog.pg_class c
          join pg_catalog.pg_namespace n on n.oid = c.relnamespace
         where n.nspname = any(%s::text[]) and c.relkind = 'r' order by 1""", (list(SCHEMAS),)).fetchall()
    return [r[0] for r in rows]


def checksums(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, str]]:
    """table -> (row count, md5 of its rows' text forms in order), in one statement."""
    parts = [sql.SQL("select {}::text, pg_catalog.count(*)::bigint, pg_catalog.md5(coalesce(pg_catalog.string_agg("
                     "x::text, E'\\n' order by x::text), '')) from {} x").format(sql.Literal(t), sql.SQL(t))
             for t in tables(conn)]
    rows = conn.execute(sql.SQL(" union all ").join(parts)).fetchall() if parts else []
    return {r[0]: (int(r[1]), str(r[2])) for r in rows}


def sequences(conn: psycopg.Connection[Any]) -> dict[str, int | None]:
    rows = conn.execute("""select pg_catalog.format('%%I.%%I', schemaname, sequencename), last_value
                             from pg_catalog.pg_sequences where schemaname = any(%s::text[])""",
                        (list(SCHEMAS),)).fetchall()
    return {r[0]: r[1] for r in rows}
