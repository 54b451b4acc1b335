"""Catalog snapshot of everything pgmlops owns, to compare install modes and upgrades."""

from __future__ import annotations

from typing import Any

import psycopg

SCHEMAS = "('mlops', 'mlops_features')"

QUERIES: dict[str, str] = {
    "functions": f"""
        select p.oid::regprocedure::text, pg_catalog.pg_get_function_result(p.oid), p.provolatile, p.proparallel,
               p.prosecdef, p.proconfig::text, pg_catalog.obj_description(p.oid, 'pg_proc'), p.proacl::text,
               pg_catalog.md5(p.prosrc)
          from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
         where n.nspname in {SCHEMAS} order by 1""",
    "relations": f"""
        select c.oid::regclass::text, c.relkind, c.relpersistence, c.relacl::text,
               pg_catalog.obj_description(c.oid, 'pg_class'), c.relispartition
          from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
         where n.nspname in {SCHEMAS} order by 1""",
    "columns": f"""
        select a.attrelid::regclass::text, a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
               a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid),
               pg_catalog.col_description(a.attrelid, a.attnum),
               a.attacl::text
          from pg_catalog.pg_attribute a join pg_catalog.pg_class c on c.oid = a.attrelid
          join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
         where n.nspname in {SCHEMAS} and a.attnum > 0 and not a.attisdropped order by 1, 3""",
    "indexes": f"""
        select schemaname, indexname, indexdef from pg_catalog.pg_indexes
         where schemaname in {SCHEMAS} order by 1, 2""",
    "constraints": f"""
        select c.conrelid::regclass::text, c.conname, pg_catalog.pg_get_constraintdef(c.oid)
          from pg_catalog.pg_constraint c join pg_catalog.pg_namespace n on n.oid = c.connamespace
         where n.nspname in {SCHEMAS} order by 1, 2""",
    "triggers": f"""
        select t.tgrelid::regclass::text, t.tgname, pg_catalog.pg_get_triggerdef(t.oid)
          from pg_catalog.pg_trigger t join pg_catalog.pg_class c on c.oid = t.tgrelid
          join pg_catalog.pg_namespace n on n.oid = c.relnamespace
         where n.nspname in {SCHEMAS} and not t.tgisinternal order by 1, 2""",
    "views": f"""
        select schemaname || '.' || viewname, pg_catalog.md5(definition) from pg_catalog.pg_views
         where schemaname in {SCHEMAS} order by 1""",
    "types": f"""
        select t.oid::regtype::text, t.typtype, pg_catalog.obj_description(t.oid, 'pg_type')
          from pg_catalog.pg_type t join pg_catalog.pg_namespace n on n.oid = t.typnamespace
         where n.nspname in {SCHEMAS} and t.typtype in ('c', 'e', 'd') and t.typrelid = 0 order by 1""",
    "schemas": f"""
        select nspname, nspacl::text, pg_catalog.obj_description(oid, 'pg_namespace')
          from pg_catalog.pg_namespace where nspname in {SCHEMAS} order by 1""",
    "migrations": "select name, sha256 from mlops._migration order by 1",
}


def snapshot(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(dsn) as conn:
        return {k: conn.execute(q).fetchall() for k, q in QUERIES.items()}
