"""Hostile pre-creation (CVE-2018-1058, CVE-2022-2625): an unprivileged role with CREATE on
``public`` (where pgvector lives) plants same-named functions and relations, better-typed
overloads of built-ins and operators that write to an audit table. Then CREATE EXTENSION
or the bundled install run, and every function of mlops is called with
``search_path = public, pg_catalog``. Goal: 0 audit rows, 0 of our objects depending on a
hostile object, and no hostile object adopted. Generic over whatever mlops contains."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pgmlops
import psycopg
import pytest
from psycopg import sql

from .sqlgen import call_everything, functions

HOSTILE = "rel_hostile"

# Operators a careless body could resolve to when public is in its search_path: the
# hostile one is better typed than pg_catalog's (implicit cast, or unknown literal ->
# text, which wins the "string category" rule).
OPERATORS: list[tuple[str, str, str, str]] = [
    ("=", "oid", "regclass", "boolean"), ("=", "regclass", "oid", "boolean"),
    ("=", "character varying", "text", "boolean"), ("=", "text", "character varying", "boolean"),
    ("=", "name", "character varying", "boolean"), ("=", "bigint", "numeric", "boolean"),
    ("=", "integer", "numeric", "boolean"), ("=", "double precision", "numeric", "boolean"),
    ("=", "jsonb", "text", "boolean"), ("@>", "jsonb", "text", "boolean"), ("||", "jsonb", "text", "jsonb"),
    ("=", "timestamp with time zone", "text", "boolean"), ("<", "timestamp with time zone", "text", "boolean"),
    (">=", "timestamp with time zone", "text", "boolean"), ("-", "timestamp with time zone", "text", "timestamptz"),
    ("+", "timestamp with time zone", "text", "timestamptz"), ("=", "integer", "text", "boolean"),
    ("=", "bigint", "text", "boolean"), ("=", "uuid", "text", "boolean"), ("=", "boolean", "text", "boolean"),
    ("=", '"char"', "text", "boolean"), ("||", "text", "integer", "text"), ("||", "text", "bigint", "text"),
    ("||", "text", "jsonb", "text"), ("||", "text", "numeric", "text"), ("||", "integer", "text", "text"),
    ("=", "vector", "text", "boolean"), ("<->", "vector", "text", "double precision"),
    ("<=>", "vector", "text", "double precision"), ("<#>", "vector", "text", "double precision"),
    ("~", "character varying", "text", "boolean"),
]

# Better-typed overloads of built-ins (pg_catalog has variadic "any" / polymorphic ones).
BUILTINS: list[tuple[str, tuple[str, ...], str]] = [
    ("format", ("text", "text"), "text"), ("format", ("text", "text", "text"), "text"),
    ("format", ("text", "bigint"), "text"), ("format", ("text", "integer"), "text"),
    ("concat", ("text", "text"), "text"), ("jsonb_build_object", ("text", "text"), "jsonb"),
    ("jsonb_build_object", ("text", "bigint"), "jsonb"), ("jsonb_build_object", ("text", "integer"), "jsonb"),
    ("jsonb_build_object", ("text", "double precision"), "jsonb"), ("jsonb_build_object", ("text", "jsonb"), "jsonb"),
    ("jsonb_build_object", ("text", "text", "text", "text"), "jsonb"), ("json_build_object", ("text", "text"), "json"),
    ("to_jsonb", ("text",), "jsonb"), ("to_jsonb", ("bigint",), "jsonb"), ("to_jsonb", ("double precision",), "jsonb"),
    ("array_length", ("text[]", "integer"), "integer"), ("array_length", ("double precision[]", "integer"), "integer"),
    ("array_length", ("real[]", "integer"), "integer"), ("cardinality", ("text[]",), "integer"),
    ("cardinality", ("double precision[]",), "integer"), ("array_to_string", ("text[]", "text"), "text"),
    ("length", ("character varying",), "integer"), ("lower", ("character varying",), "text"),
    ("upper", ("character varying",), "text"), ("left", ("character varying", "integer"), "text"),
    ("array_position", ("text[]", "text"), "integer"), ("jsonb_typeof", ("text",), "text"),
]


def hostile_setup(conn: psycopg.Connection[Any], reference: psycopg.Connection[Any]) -> int:
    """Plants every hostile object as role rel_hostile; returns how many were created."""
    conn.execute(sql.SQL("grant create on schema public to {}").format(sql.Identifier(HOSTILE)))
    conn.execute(sql.SQL("set role {}").format(sql.Identifier(HOSTILE)))
    conn.execute("""create table public.audit (at timestamptz not null default now(), who text not null
                     default current_user, what text not null)""")
    conn.execute("grant select, insert on public.audit to public")
    conn.execute("""create function public.hostile_hit(what text) returns boolean language plpgsql as $$
                    begin insert into public.audit (what) values (what); return false; end $$""")
    made = 0

    def fn(name: str, args: tuple[str, ...], ret: str) -> str | None:
        nonlocal made
        ident = f"{name}({', '.join(args)})"
        body = sql.SQL("begin perform public.hostile_hit({}); return null; end").format(sql.Literal(ident))
        stmt = sql.SQL("create function public.{}({}) returns {} language plpgsql as {}").format(
            sql.Identifier(name), sql.SQL(", ").join(sql.SQL(a) for a in args), sql.SQL(ret),
            sql.Literal(body.as_string(conn)))
        try:
            with conn.transaction():
                conn.execute(stmt)
        except psycopg.Error:
            return None
        made += 1
        return ident

    for i, (op, left, right, ret) in enumerate(OPERATORS):
        fname = f"hostile_op_{i}"
        if fn(fname, (left, right), ret) is not None:
            conn.execute(sql.SQL("create operator public.{} (function = public.{}, leftarg = {}, rightarg = {})")
                         .format(sql.SQL(op), sql.Identifier(fname), sql.SQL(left), sql.SQL(right)))
    for name, args, ret in BUILTINS:
        fn(name, args, ret)
    for f in functions(reference):
        fn(f.name, f.argtypes, "text")  # same name, same arguments (wins if called unqualified)
        for arity in range(1, len(f.argtypes) + 1):
            fn(f.name, ("text",) * arity, "text")  # better-typed for unknown literals
    names = [r[0] for r in reference.execute("""
        select distinct c.relname::text from pg_catalog.pg_class c join pg_catalog.pg_namespace n
          on n.oid = c.relnamespace where n.nspname in ('mlops', 'mlops_features') and c.relkind in ('r', 'v', 'p')
        """).fetchall()]
    conn.execute("""create function public.hostile_trg() returns trigger language plpgsql as $$
                    begin perform public.hostile_hit(tg_op || ' ' || tg_table_name); return null; end $$""")
    for rel in names:
        conn.execute(sql.SQL("create view public.{} as select public.hostile_hit({}) as hit").format(
            sql.Identifier(rel), sql.Literal(f"select {rel}")))
        conn.execute(sql.SQL("create trigger hostile instead of insert or update or delete on public.{} "
                             "for each row execute function public.hostile_trg()").format(sql.Identifier(rel)))
        made += 1
    conn.execute("reset role")
    return made


ADOPTED = """
with hostile as (select oid from pg_catalog.pg_roles where rolname = %(role)s),
ours as (select oid from pg_catalog.pg_namespace where nspname in ('mlops', 'mlops_features')),
h as (  -- every object the hostile role owns
  select 'pg_catalog.pg_proc'::regclass as cls, oid from pg_catalog.pg_proc where proowner = (table hostile)
  union all select 'pg_catalog.pg_operator'::regclass, oid from pg_catalog.pg_operator
   where oprowner = (table hostile)
  union all select 'pg_catalog.pg_class'::regclass, oid from pg_catalog.pg_class where relowner = (table hostile)
  union all select 'pg_catalog.pg_type'::regclass, oid from pg_catalog.pg_type where typowner = (table hostile))
select pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) || ' -> '
       || pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
  from pg_catalog.pg_depend d join h on h.cls = d.refclassid and h.oid = d.refobjid
 where case d.classid
         when 'pg_catalog.pg_proc'::regclass then
           (select pronamespace from pg_catalog.pg_proc where oid = d.objid) in (table ours)
         when 'pg_catalog.pg_class'::regclass then
           (select relnamespace from pg_catalog.pg_class where oid = d.objid) in (table ours)
         when 'pg_catalog.pg_rewrite'::regclass then
           (select c.relnamespace from pg_catalog.pg_rewrite r join pg_catalog.pg_class c on c.oid = r.ev_class
             where r.oid = d.objid) in (table ours)
         when 'pg_catalog.pg_attrdef'::regclass then
           (select c.relnamespace from pg_catalog.pg_attrdef a join pg_catalog.pg_class c on c.oid = a.adrelid
             where a.oid = d.objid) in (table ours)
         when 'pg_catalog.pg_constraint'::regclass then
           (select connamespace from pg_catalog.pg_constraint where oid = d.objid) in (table ours)
         when 'pg_catalog.pg_trigger'::regclass then
           (select c.relnamespace from pg_catalog.pg_trigger t join pg_catalog.pg_class c on c.oid = t.tgrelid
             where t.oid = d.objid) in (table ours)
         when 'pg_catalog.pg_type'::regclass then
           (select typnamespace from pg_catalog.pg_type where oid = d.objid) in (table ours)
         else false end
union all
select 'extension member: ' || pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
  from pg_catalog.pg_depend d join h on h.cls = d.classid and h.oid = d.objid
 where d.deptype = 'e'
union all
select 'in our schema: ' || pg_catalog.pg_describe_object(h.cls, h.oid, 0) from h
 where case h.cls when 'pg_catalog.pg_proc'::regclass then
          (select pronamespace from pg_catalog.pg_proc where oid = h.oid) in (table ours)
        when 'pg_catalog.pg_class'::regclass then
          (select relnamespace from pg_catalog.pg_class where oid = h.oid) in (table ours)
        else false end
"""


@pytest.fixture(scope="module")
def hostile_role(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("""do $$ begin
            if not exists (select from pg_catalog.pg_roles where rolname = {r}) then
              create role {i} login nosuperuser nocreatedb nocreaterole;
            end if; end $$""").format(r=sql.Literal(HOSTILE), i=sql.Identifier(HOSTILE)))
    return HOSTILE


def install(dsn: str, mode: str) -> None:
    if mode == "extension":
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("create extension pgmlops")
            conn.execute("create extension pgmlops_python cascade")
    else:
        pgmlops.install(dsn, python=True)


@pytest.mark.parametrize("mode", ["extension", "bundled"])
def test_hostile_public_objects_never_run(mode: str, dsn: str, hostile_role: str,
                                          database_factory: Callable[..., str]) -> None:
    target = database_factory(None, prefix=f"hostile_{mode}")
    with psycopg.connect(dsn, autocommit=True) as ref, psycopg.connect(target, autocommit=True) as conn:
        conn.execute("create extension vector schema public")  # the common (and worst) place for it
        planted = hostile_setup(conn, ref)
        assert planted > 50
        # The plant works: an unqualified call from a session with public first hits the audit.
        conn.execute("set search_path = public, pg_catalog")
        conn.execute("select format('%s', 'x'::text)")
        assert conn.execute("select count(*) from public.audit").fetchone() == (1,)
        conn.execute("truncate public.audit")
        conn.execute("reset search_path")

        install(target, mode)
        assert conn.execute("select mlops.version()").fetchone() is not None
        assert conn.execute("select what from public.audit").fetchall() == [], "hostile code ran during install"

        conn.execute("set search_path = public, pg_catalog")
        stats = call_everything(conn, functions(conn))
        for (view,) in conn.execute("select pg_catalog.format('%I.%I', schemaname, viewname) from pg_catalog.pg_views "
                                    "where schemaname in ('mlops', 'mlops_features')").fetchall():
            conn.execute(sql.SQL("select * from {} limit 5").format(sql.SQL(view))).fetchall()
        conn.execute("set search_path = pg_catalog, pg_temp")  # our own checks must not hit the plants
        assert stats["calls"] >= 2 * 5
        hits = conn.execute("select what, count(*) from public.audit group by 1 order by 1").fetchall()
        adopted = [r[0] for r in conn.execute(ADOPTED, {"role": hostile_role}).fetchall()]
        assert (hits, adopted) == ([], []), f"hostile executions {hits}; our objects depending on hostile {adopted}"


@pytest.mark.parametrize("schema", ["mlops", "mlops_features"])
@pytest.mark.parametrize("mode", ["extension", "bundled"])
def test_hostile_schema_is_never_adopted(mode: str, schema: str, hostile_role: str,
                                         database_factory: Callable[..., str]) -> None:
    target = database_factory(None, prefix=f"hschema_{mode}")
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("create extension vector")
        db = conn.execute("select current_database()").fetchone()
        assert db is not None
        conn.execute(sql.SQL("grant create on database {} to {}").format(sql.Identifier(db[0]),
                                                                        sql.Identifier(hostile_role)))
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(hostile_role)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        conn.execute("reset role")
        with pytest.raises((psycopg.Error, pgmlops.InstallError)):
            install(target, mode)
        # Nothing installed, nothing of the hostile's adopted.
        assert conn.execute("select pg_catalog.to_regclass('mlops._migration') is null").fetchone() == (True,)
        assert conn.execute("select count(*) from pg_catalog.pg_extension where extname like 'pgmlops%'"
                            ).fetchone() == (0,)
        assert conn.execute("select count(*) from pg_catalog.pg_class c join pg_catalog.pg_namespace n "
                            "on n.oid = c.relnamespace where n.nspname = %s", (schema,)).fetchone() == (0,)
