"""Injection and bad input (issue 10, item 5): hypothesis drives every public SQL function of
mlops (enumerated from the catalog, arguments generated from each parameter's type) and the
main client methods with hostile values: quotes, ``$``, backslashes, spaces, unicode,
63/64-byte identifiers, statement break-outs; NaN, +-inf, NULL, empty arrays, wrong vector
dimensions, JSON beyond the documented 64 KiB limit, unknown names -- mixed with names that
exist, so calls get past the first lookup.

After every call:
- an error carries a documented SQLSTATE (``ALLOWED``); an internal error (XX...), a syntax
  error from our dynamic SQL (42601, i.e. an injection), an undefined column, a lost
  connection... is a finding;
- no object appeared or changed (ACLs included) outside our schemas (catalog diff);
- a rejected call left every table of mlops and mlops_features unchanged (row count and
  checksum of each table before/after).

Findings are collected (not shrunk) and reported together: function, arguments, SQLSTATE.
The fast part runs a few examples per function; ``--run-slow`` runs many more.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pgmlops
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.json import Jsonb

from . import capabilities as cap
from .sqlgen import checksums
from .test_crash import record

# Documented SQLSTATEs: data exceptions (22), integrity (23), unknown objects, duplicates,
# missing rows (P0002), wrong state (55000), unsupported (0A000), the 64 KiB JSON limit
# (54000), a missing embedding model package (58P01).
ALLOWED_CLASSES = ("22", "23")
ALLOWED = {"42704", "42P01", "42710", "42P07", "42883", "P0002", "55000", "0A000", "54000", "58P01"}
# Arguments documented as SQL text written by the caller (an admin): errors in that SQL are the
# caller's own (syntax, unknown column, ...). They get well-formed hostile queries only, never
# break-outs, so a syntax error there still comes from the caller's text.
SQL_ARGS = {("create_reference_profile", "query"), ("create_drift_monitor", "query"), ("create_training_set", "spine")}
SQL_ALLOWED = {"42601", "42703", "42P01", "42883", "42804", "42846", "42P10", "42803", "21000", "3F000", "42501"}

BREAKOUTS = [
    "x'); create table public.pwned_1(i int); --", "x\"; create table public.pwned_2(i int); --",
    "$$; create table public.pwned_3(i int); $$", "x' || (select pg_catalog.pg_sleep(0)) || '",
    "x); grant all on schema public to public; --", "%I%L%s%%", "$1", "$x$", "E'\\x27'", "';--",
]
HOSTILE_TEXT = [
    "", " ", "'", "''", '"', "a'b", 'a"b', "$$", "\\", "\\'", "a b", " lead", "trail ", "a\tb", "a\nb",
    "é", "ü名前", "emoji 🚀", "\u202eevil", "A", "Upper_Case", "null", "NULL", "1", "-1", "NaN", "Infinity",
    "{}", "[]", "{\"a\": 1}", "pg_catalog.pg_authid", "mlops.alerts", "public.rel_reference", "latest",
    "x" * 63, "x" * 64, "é" * 32, "a" + "é" * 31, "a" * 200, *BREAKOUTS,
]
KNOWN = [cap.MODEL, cap.EXPERIMENT, cap.ENTITY, cap.GROUP, cap.PROFILE, cap.MONITOR, cap.EMBED_MODEL, "champion",
         "challenger", "control", "treatment", "user_1", "req_0_0", "amount", f"{cap.GROUP}:amount", "rel_customer_id",
         "1", "2", "all_minilm_l6_v2", "no_such_thing"]
QUERIES = ["select x, c from public.rel_reference", "select x from public.rel_reference where c = 'c1'",
           "select 1 as x", "select x from public.no_such_table", "select nope from public.rel_reference",
           "select 1/0 as x", "", "not sql at all", "select $$a$$ as c", "select 'a''b' as c"]
FLOATS = [None, 0.0, -0.0, 0.5, 1.0, -1.0, 1e308, -1e308, 5e-324, math.nan, math.inf, -math.inf]
INTS = [None, 0, 1, 2, 3, -1, 100, 2**31 - 1, -(2**31), 2**63 - 1]
BIG_JSON = {"blob": "x" * 70_000}  # beyond the documented 64 KiB limit
DEEP_JSON: Any = {"a": 1}
for _ in range(200):
    DEEP_JSON = {"d": DEEP_JSON}


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from(HOSTILE_TEXT + KNOWN),
                        st.floats(allow_nan=False, allow_infinity=False))
    keyed = st.dictionaries(st.sampled_from(HOSTILE_TEXT + KNOWN + ["name", "weight", "version", "alias", "type",
                                                                     "x", "kind", "value"]), scalars, max_size=4)
    fixed = st.sampled_from([{}, [], "s", 1, None, BIG_JSON, DEEP_JSON,
                             [{"name": "control", "version": 1, "weight": 1}],
                             [{"name": "a'b", "weight": 0.5}, {"name": "$$", "weight": 0.5}], {"x": "NaN"},
                             {"amount": "Infinity"}, [{"rel_customer_id": 1, "event_ts": "2026-01-01", "amount": -1}],
                             [{"rel_customer_id": "1'; drop table x; --", "event_ts": "infinity"}]])
    return st.one_of(fixed, keyed, st.lists(keyed, max_size=3), scalars)


def vector_text() -> st.SearchStrategy[str | None]:
    dims = st.sampled_from([1, 2, 3, 4, 384, 16001])
    return st.one_of(st.none(), st.sampled_from(["[]", "[NaN,1,2]", "[Infinity,1,2]", "[1,2,3]", "[1,,2]", "x",
                                                 "[1e39,0,0]", "[0,0,0]"]),
                     dims.map(lambda n: "[" + ",".join(["0.5"] * n) + "]"))


# Values that exist, per parameter name: half of the draws use one, so the hostile value in
# another argument gets past the first lookup.
VALID: dict[str, list[Any]] = {
    "model": [cap.MODEL, cap.EMBED_MODEL], "experiment": [cap.EXPERIMENT],
    "experiment_or_model": [cap.EXPERIMENT, cap.MODEL],
    "group": [cap.GROUP], "feature_group": [cap.GROUP], "entity": [cap.ENTITY], "profile": [cap.PROFILE],
    "monitor": [cap.MONITOR], "sync": [cap.SYNC], "alias": ["champion", "challenger"],
    "alias_or_version": ["champion", "1", "latest"], "version": [1, 2, 3], "unit_id": cap.UNITS[:3],
    "unit_ids": [cap.UNITS[:5]], "request_id": ["req_0_0", "req_1_2"], "features": [[f"{cap.GROUP}:amount"]],
    "job": [1], "worker": ["w1"], "name": [cap.MODEL, cap.EXPERIMENT, cap.GROUP, cap.PROFILE, cap.MONITOR, cap.SYNC],
    "winner": ["treatment"], "source": ["public.rel_docs"], "columns": [["body"], ["x"]],
}


def strategy(func: str, arg: str, typ: str) -> st.SearchStrategy[Any]:
    """Hostile values for one parameter (sent as %s::typ), or half of the time one that exists."""
    if (func, arg) in SQL_ARGS:
        return st.one_of(st.none(), st.sampled_from(QUERIES))
    hostile = hostile_values(typ)
    if arg in VALID:
        return st.one_of(st.sampled_from(VALID[arg]), hostile)
    return hostile


def hostile_values(typ: str) -> st.SearchStrategy[Any]:
    text = st.one_of(st.none(), st.sampled_from(HOSTILE_TEXT), st.sampled_from(KNOWN),
                     st.text(max_size=70).filter(lambda s: "\x00" not in s))
    if typ in ("text", "name", "character varying"):
        return text
    if typ in ("integer", "bigint", "smallint"):
        return st.one_of(st.sampled_from(INTS), st.integers(-5, 10))
    if typ in ("double precision", "real", "numeric"):
        return st.one_of(st.sampled_from(FLOATS), st.floats())
    if typ == "boolean":
        return st.sampled_from([None, True, False])
    if typ in ("jsonb", "json"):
        return st.one_of(st.none(), json_values().map(Jsonb), st.sampled_from(["{", "not json", "[1,]"]))
    if typ in ("text[]", "character varying[]"):
        return st.one_of(st.none(), st.just([]), st.just([None]), st.lists(text, max_size=4),
                         st.just(["x"] * 5000))
    if typ in ("double precision[]", "real[]", "numeric[]"):
        return st.one_of(st.none(), st.just([]), st.just([None]), st.lists(st.sampled_from(FLOATS[1:]), max_size=6),
                         st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50))
    if typ in ("integer[]", "bigint[]"):
        return st.one_of(st.none(), st.just([]), st.just([None]), st.lists(st.sampled_from(INTS[1:]), max_size=5))
    if typ == "vector":
        return vector_text()
    if typ == "vector[]":
        return st.one_of(st.none(), st.just([]), st.lists(vector_text(), max_size=3))
    if typ == "bytea":
        return st.sampled_from([None, b"", b"\x00", b"not json", b'{"kind": "linear"}', b"\xff" * 1000])
    if typ == "regclass":
        return st.sampled_from([None, "public.rel_reference", "mlops.alerts", "pg_catalog.pg_authid",
                                "mlops_features.rel_group__v1", "public.no_such_table", "\"a'b\""])
    if typ == "timestamp with time zone":
        return st.sampled_from([None, "2026-01-02 00:00+00", "infinity", "-infinity", "epoch", "1900-01-01",
                                "294276-12-31 00:00+00"])
    if typ == "interval":
        return st.sampled_from([None, "1 hour", "0", "-1 day", "1 microsecond", "1000 years", "178000000 years"])
    return st.none()


@dataclass
class Func:
    name: str
    args: list[tuple[str, str, bool]]  # (name, type, has default)
    volatile: bool
    signature: str


def public_functions(conn: psycopg.Connection[Any]) -> list[Func]:
    rows = conn.execute("""
        select p.proname::text, p.oid::regprocedure::text, p.provolatile = 'v', p.pronargdefaults,
               coalesce((select pg_catalog.array_agg(pg_catalog.format_type(t, null) order by i)
                           from pg_catalog.unnest(p.proargtypes::oid[]) with ordinality u(t, i)), '{}'),
               coalesce(p.proargnames[1:p.pronargs], '{}')
          from pg_catalog.pg_proc p
         where p.pronamespace = 'mlops'::regnamespace and p.prokind = 'f' and p.proname !~ '^_'
           and p.prorettype <> 'pg_catalog.trigger'::pg_catalog.regtype
         order by 2""").fetchall()
    out = []
    for name, sig, volatile, ndefaults, types, names in rows:
        n = len(types)
        out.append(Func(name, [(names[i] if i < len(names) else f"arg{i}", types[i], i >= n - ndefaults)
                               for i in range(n)], volatile, sig))
    return out


OUTSIDE = """
with ours as (select oid from pg_catalog.pg_namespace
               where nspname in ('mlops', 'mlops_features', 'pg_toast') or nspname like 'pg_temp%%'
                  or nspname like 'pg_toast_temp%%')
select x from (
  select 'class ' || c.oid::regclass::text || ' ' || c.relkind::text || coalesce(c.relacl::text, '') as x
    from pg_catalog.pg_class c where c.relnamespace not in (select oid from ours)
  union all select 'proc ' || p.oid::regprocedure::text || coalesce(p.proacl::text, '') from pg_catalog.pg_proc p
   where p.pronamespace not in (select oid from ours)
  union all select 'type ' || t.oid::regtype::text from pg_catalog.pg_type t
   where t.typnamespace not in (select oid from ours)
  union all select 'schema ' || n.nspname || coalesce(n.nspacl::text, '') from pg_catalog.pg_namespace n
   where n.nspname not like 'pg_temp%%' and n.nspname not like 'pg_toast_temp%%'
  union all select 'operator ' || o.oid::regoperator::text from pg_catalog.pg_operator o
   where o.oprnamespace not in (select oid from ours)
  union all select 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text from pg_catalog.pg_trigger t
    join pg_catalog.pg_proc f on f.oid = t.tgfoid join pg_catalog.pg_class c on c.oid = t.tgrelid
   where f.pronamespace <> 'mlops'::regnamespace and c.relnamespace not in (select oid from ours)
  union all select 'rule ' || r.rulename || ' on ' || r.ev_class::regclass::text from pg_catalog.pg_rewrite r
    join pg_catalog.pg_class c on c.oid = r.ev_class where c.relnamespace not in (select oid from ours)
  union all select 'event trigger ' || evtname from pg_catalog.pg_event_trigger
  union all select 'role ' || rolname::text || rolsuper::text from pg_catalog.pg_roles
  union all select 'database ' || datname from pg_catalog.pg_database
  union all select 'extension ' || extname from pg_catalog.pg_extension
  union all select 'policy ' || polname from pg_catalog.pg_policy
  union all select 'default acl ' || defaclobjtype::text from pg_catalog.pg_default_acl
  union all select 'setting ' || coalesce(array_to_string(setconfig, ','), '') from pg_catalog.pg_db_role_setting
) s order by 1"""


# Cheap fingerprint of the same catalogs (oid and xmin: a new object or a changed ACL shows).
FINGERPRINT = """
with ours as (select oid from pg_catalog.pg_namespace
               where nspname in ('mlops', 'mlops_features', 'pg_toast') or nspname like 'pg_temp%%'
                  or nspname like 'pg_toast_temp%%')
select pg_catalog.md5(pg_catalog.string_agg(x, ',' order by x)) from (
  select 'c' || oid::text || ':' || xmin::text as x from pg_catalog.pg_class
   where relnamespace not in (select oid from ours)
  union all select 'p' || oid::text || ':' || xmin::text from pg_catalog.pg_proc
   where pronamespace not in (select oid from ours)
  union all select 'y' || oid::text || ':' || xmin::text from pg_catalog.pg_type
   where typnamespace not in (select oid from ours)
  union all select 'n' || oid::text || ':' || xmin::text from pg_catalog.pg_namespace
   where nspname not like 'pg_temp%%' and nspname not like 'pg_toast_temp%%'
  union all select 'o' || oid::text || ':' || xmin::text from pg_catalog.pg_operator
   where oprnamespace not in (select oid from ours)
  union all select 't' || t.oid::text from pg_catalog.pg_trigger t join pg_catalog.pg_proc f on f.oid = t.tgfoid
   where f.pronamespace <> 'mlops'::regnamespace
  union all select 'r' || oid::text from pg_catalog.pg_rewrite
  union all select 'e' || oid::text || ':' || xmin::text from pg_catalog.pg_event_trigger
  union all select 'a' || oid::text || ':' || xmin::text from pg_catalog.pg_authid
  union all select 'd' || oid::text || ':' || xmin::text from pg_catalog.pg_database
  union all select 'x' || oid::text || ':' || xmin::text from pg_catalog.pg_extension
  union all select 'l' || oid::text from pg_catalog.pg_policy
  union all select 'f' || oid::text from pg_catalog.pg_default_acl
  union all select 's' || setdatabase::text || setrole::text || ':' || xmin::text from pg_catalog.pg_db_role_setting
) s"""


def outside(conn: psycopg.Connection[Any]) -> list[str]:
    """The objects outside our schemas, by name (for reports)."""
    return [r[0] for r in conn.execute(OUTSIDE).fetchall()]


def fingerprint(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(FINGERPRINT).fetchone()
    return str(row[0]) if row else ""


@dataclass
class Checker:
    """Runs calls on ``work`` and checks them from ``check`` (a second session)."""

    url: str
    work: psycopg.Connection[Any]
    check: psycopg.Connection[Any]
    data: dict[str, tuple[int, str]] = field(default_factory=dict)
    catalog: list[str] = field(default_factory=list)
    print: str = ""
    findings: dict[str, str] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=lambda: {"calls": 0, "rejected": 0, "accepted": 0})
    codes: dict[str, int] = field(default_factory=dict)

    @classmethod
    def open(cls, url: str) -> Checker:
        c = cls(url, psycopg.connect(url, autocommit=True), psycopg.connect(url, autocommit=True))
        c.reset()
        return c

    def reset(self) -> None:
        self.data, self.catalog, self.print = checksums(self.check), outside(self.check), fingerprint(self.check)

    def reconnect(self) -> None:
        self.work.close()
        self.work = psycopg.connect(self.url, autocommit=True)

    def finding(self, key: str, detail: str) -> None:
        self.findings.setdefault(key, detail)

    def run(self, label: str, call: Callable[[], Any], sql_arg: bool = False,
            extra_allowed: tuple[type[BaseException], ...] = (), args: tuple[str, ...] = (),
            creates_outside: str | None = None) -> None:
        """One call: SQLSTATE allow-list, catalog diff, data unchanged when rejected. ``args``:
        the argument names (an error message must name one); ``creates_outside``: a name
        prefix of objects the call documents creating outside our schemas when it succeeds."""
        self.stats["calls"] += 1
        error: BaseException | None = None
        try:
            call()
        except psycopg.Error as exc:
            error = exc
            code = exc.sqlstate or "no-sqlstate"
            self.codes[code] = self.codes.get(code, 0) + 1
            # A 42xxx raised while parsing a query our code built (internal_query set) means a
            # caller's value reached dynamic SQL unchecked; 42703 naming the argument is fine.
            dynamic = exc.diag.internal_query is not None and code.startswith("42")
            # Our own RAISE of another 42xxx (42703 unknown column, 42P10 no primary key, ...) is
            # fine when its message names the argument; 42601 never is.
            text = str(exc).splitlines()[0] if str(exc) else ""
            names_argument = "(argument " in text or text.startswith("invalid ") or any(
                re.search(rf"\b{re.escape(a)}\b", text) for a in args)
            documented = code[:2] in ALLOWED_CLASSES or code in ALLOWED or (
                code.startswith("42") and code != "42601" and not dynamic and names_argument)
            ok = (documented and not dynamic) or (sql_arg and (documented or code in SQL_ALLOWED))
            if not ok:
                msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                if dynamic:
                    msg += f" [in dynamic SQL: {(exc.diag.internal_query or '')[:120]!r}]"
                self.finding(f"{label.split('(')[0]} {code}", f"{label} -> {code}: {msg}")
            if self.work.closed or self.work.broken:
                self.finding(f"{label.split('(')[0]} connection lost", f"{label} -> connection lost")
                self.reconnect()
        except extra_allowed as exc:
            error = exc
        except Exception as exc:  # a client method failing with an undocumented Python exception
            error = exc
            self.finding(f"{label.split('(')[0]} {type(exc).__name__}", f"{label} -> {type(exc).__name__}: {exc}"[:300])
        fp = fingerprint(self.check)
        now = outside(self.check) if fp != self.print else self.catalog
        self.print = fp
        if now != self.catalog:
            # a successful call may drop what it created before (drop_embedding_sync) and create
            # what it documents (an embedding sync's destination next to its source)
            added = [x for x in sorted(set(now) - set(self.catalog)) if error is not None or creates_outside is None
                     or not x.split(" ", 1)[1].split(".")[-1].startswith(creates_outside)]
            removed = sorted(set(self.catalog) - set(now)) if error is not None else []
            if added or removed:
                self.finding(f"{label.split('(')[0]} catalog", f"{label} changed objects outside our schemas: "
                             f"+{added[:5]} -{removed[:5]}")
            self.catalog = now
        if error is None:
            self.stats["accepted"] += 1
            self.data = checksums(self.check)
            return
        self.stats["rejected"] += 1
        after = checksums(self.check)
        if after != self.data:
            changed = sorted(t for t in set(after) | set(self.data) if after.get(t) != self.data.get(t))
            self.finding(f"{label.split('(')[0]} data", f"{label} was rejected but changed {changed}")
            self.data = after


def short(value: Any) -> str:
    r = repr(value.obj if isinstance(value, Jsonb) else value)
    return r if len(r) <= 60 else r[:57] + "..."


def call_function(checker: Checker, f: Func, values: dict[str, Any]) -> None:
    parts = [sql.SQL("{} => %s::{}").format(sql.Identifier(a), sql.SQL(t)) for a, t, _ in f.args if a in values]
    query = sql.SQL("select * from {}({})").format(sql.Identifier("mlops", f.name), sql.SQL(", ").join(parts))
    params = [values[a] for a, _, _ in f.args if a in values]
    label = f"mlops.{f.name}(" + ", ".join(f"{a} => {short(values[a])}" for a, _, _ in f.args if a in values) + ")"
    creates = None
    if f.name == "create_embedding_sync":  # destination (default: <source>_embeddings) and its storage
        creates = str(values.get("destination") or f"{str(values.get('source')).split('.')[-1]}_embeddings")
    checker.run(label, lambda: checker.work.execute(query, params).fetchall(),
                sql_arg=any((f.name, a) in SQL_ARGS for a in values), args=tuple(values), creates_outside=creates)


def one_function(checker: Checker, f: Func, examples: int) -> Callable[[], None]:
    """A hypothesis test calling ``f`` with hostile arguments (required ones always, optional ones
    sometimes, by name)."""
    arg_strategies = {a: strategy(f.name, a, t) for a, t, _ in f.args}
    optional = [a for a, _, has_default in f.args if has_default]

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        chosen = set(data.draw(st.lists(st.sampled_from(optional), unique=True))) if optional else set()
        values = {a: data.draw(s, label=a) for a, s in arg_strategies.items() if a in chosen or a not in optional}
        call_function(checker, f, values)

    return one


def exercise_functions(url: str, examples: int) -> dict[str, Any]:
    started = time.monotonic()
    checker = Checker.open(url)
    checker.work.execute("set statement_timeout = '20s'")
    funcs = public_functions(checker.work)
    timings: dict[str, float] = {}
    try:
        for f in funcs:
            t0 = time.monotonic()
            one_function(checker, f, examples)()
            timings[f.signature] = time.monotonic() - t0
    finally:
        checker.work.close()
        checker.check.close()
    return {"functions": len(funcs), "examples_per_function": examples, **checker.stats,
            "findings": sorted(checker.findings.values()), "sqlstates": dict(sorted(checker.codes.items())),
            "seconds": round(time.monotonic() - started, 1),
            "slowest": {k: round(v, 1) for k, v in sorted(timings.items(), key=lambda kv: -kv[1])[:5]}}


@pytest.fixture(scope="module")
def populated(dsn: str) -> Iterator[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cap.populate_all(conn)
    yield dsn


def report(name: str, figures: dict[str, Any]) -> None:
    record(name, **{k: v for k, v in figures.items() if k != "findings"}, findings=len(figures["findings"]))
    assert figures["findings"] == [], "\n".join(figures["findings"])


def test_every_function_rejects_bad_input_cleanly(populated: str) -> None:
    figures = exercise_functions(populated, int(os.environ.get("PGMLOPS_INJECTION_EXAMPLES", "5")))
    assert figures["rejected"] > 0 and figures["accepted"] > 0
    report("injection_functions_fast", figures)


def fresh_populated(database_factory: Callable[..., str], prefix: str) -> str:
    url = database_factory("extension", prefix=prefix)
    with psycopg.connect(url, autocommit=True) as conn:
        cap.populate_all(conn)
    return url


SLOW_EXAMPLES = int(os.environ.get("PGMLOPS_INJECTION_SLOW_EXAMPLES", "25"))


@pytest.mark.slow
def test_every_function_rejects_bad_input_cleanly_many(database_factory: Callable[..., str]) -> None:
    report("injection_functions_slow", exercise_functions(fresh_populated(database_factory, "inj_slow"), SLOW_EXAMPLES))


def test_checker_detects_a_bad_call(populated: str) -> None:
    """The checks can fail: an internal error, an injection-like syntax error, an object created
    outside our schemas and a rejected call that changed data are all reported."""
    checker = Checker.open(populated)
    try:
        checker.run("internal()", lambda: checker.work.execute("do $$ begin raise exception 'boom' "
                                                               "using errcode = 'XX000'; end $$"))
        checker.run("syntax()", lambda: checker.work.execute("select from from"))
        checker.run("creates()", lambda: checker.work.execute("create table public.rel_pwned (i int)"))
        # a non-transactional change (a second session commits) while the call is rejected
        checker.run("changes()", lambda: (checker.check.execute("delete from mlops.alerts where true"),
                                          checker.check.execute("insert into mlops.alerts (source, subject, severity, "
                                                                "message) values ('x', 'y', 'info', 'z')"),
                                          checker.work.execute("select 1/0")))
        checker.run("fine()", lambda: checker.work.execute("select 1/0"))
    finally:
        checker.work.execute("drop table if exists public.rel_pwned")
        checker.work.close()
        checker.check.close()
    assert sorted(checker.findings) == ["changes data", "creates catalog", "internal XX000", "syntax 42601"]


# ---- client methods -------------------------------------------------------------------------

NAMES = st.one_of(st.sampled_from(HOSTILE_TEXT), st.sampled_from(KNOWN))
FLOAT_LISTS: st.SearchStrategy[list[float]] = st.one_of(st.just([]), st.lists(st.sampled_from(FLOATS[1:]), max_size=5),
                        st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=20))
JSONISH = json_values()


def client_calls(c: pgmlops.Client) -> dict[str, tuple[Callable[..., Any], dict[str, st.SearchStrategy[Any]]]]:
    r, p, e, f, d, emb = c.registry, c.predictions, c.experiments, c.features, c.drift, c.embeddings
    ints = st.sampled_from(INTS[1:])
    return {
        "registry.register": (r.register, {"name": NAMES}),
        "registry.set_alias": (r.set_alias, {"model": NAMES, "alias": NAMES, "version": ints}),
        "registry.delete_alias": (r.delete_alias, {"model": NAMES, "alias": NAMES}),
        "registry.rollback": (r.rollback, {"model": NAMES, "alias": NAMES}),
        "registry.get_version": (r.get_version, {"model": NAMES, "alias_or_version": st.one_of(NAMES, ints)}),
        "registry.versions": (r.versions, {"model": NAMES}),
        "registry.history": (r.history, {"model": NAMES}),
        "registry.submit_job": (r.submit_job, {"model": NAMES, "config": st.dictionaries(NAMES, JSONISH, max_size=3)}),
        "predictions.log": (p.log, {"model": NAMES, "request_id": NAMES, "version": ints,
                                    "score": st.sampled_from(FLOATS), "features": st.dictionaries(NAMES, JSONISH,
                                                                                                max_size=3)}),
        "predictions.feedback": (p.feedback, {"request_id": NAMES, "label": NAMES}),
        "predictions.performance": (p.performance, {"model": NAMES}),
        "experiments.create": (e.create, {"name": NAMES, "variants": st.lists(st.dictionaries(
            st.sampled_from(["name", "weight", "version", "alias"]), JSONISH, max_size=4), max_size=3),
            "model": st.one_of(st.none(), NAMES)}),
        "experiments.assign": (e.assign, {"experiment": NAMES, "unit_id": NAMES}),
        "experiments.assign_batch": (e.assign_batch, {"experiment": NAMES, "unit_ids": st.lists(NAMES, max_size=4)}),
        "experiments.route": (e.route, {"experiment_or_model": NAMES, "unit_id": NAMES}),
        "experiments.results": (e.results, {"experiment": NAMES}),
        "experiments.set_traffic": (e.set_traffic, {"experiment": NAMES, "weights": FLOAT_LISTS}),
        "features.create_entity": (f.create_entity, {"name": NAMES}),
        "features.write_rows": (f.write_rows, {"group": NAMES, "rows": st.lists(st.dictionaries(NAMES, JSONISH,
                                                                                                 max_size=3),
                                                                                 max_size=2)}),
        "features.online_raw": (f.online_raw, {"entity": NAMES, "keys": st.lists(NAMES, max_size=3),
                                               "features": st.lists(NAMES, max_size=3)}),
        "features.validate": (f.validate, {"group": NAMES}),
        "drift.ks_2samp": (d.ks_2samp, {"reference": FLOAT_LISTS, "current": FLOAT_LISTS}),
        "drift.psi": (d.psi, {"reference": FLOAT_LISTS, "current": FLOAT_LISTS}),
        "drift.chi2_test": (d.chi2_test, {"reference": st.lists(NAMES, max_size=5), "current": st.lists(NAMES,
                                                                                                         max_size=5)}),
        "drift.run": (d.run, {"name": NAMES}),
        "embeddings.model_info": (emb.model_info, {"model": NAMES}),
        "embeddings.similar": (emb.similar, {"sync": NAMES, "query": st.lists(st.sampled_from(FLOATS[1:]),
                                                                              max_size=4)}),
    }


def one_method(checker: Checker, c: pgmlops.Client, name: str, method: Callable[..., Any],
               kwargs: dict[str, st.SearchStrategy[Any]], examples: int) -> Callable[[], None]:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        values = {k: data.draw(s, label=k) for k, s in kwargs.items()}
        label = f"client.{name}(" + ", ".join(f"{k}={short(v)}" for k, v in values.items()) + ")"
        # client-side validation may refuse first (ValueError/TypeError/PgmlopsError)
        checker.run(label, lambda: method(**values), extra_allowed=(ValueError, TypeError, pgmlops.PgmlopsError),
                    args=tuple(values))
        if checker.work is not c.conn:  # reconnected after a lost connection
            raise AssertionError(f"{label}: the client's connection was lost")

    return one


def exercise_client(url: str, examples: int) -> dict[str, Any]:
    started = time.monotonic()
    checker = Checker.open(url)
    with pgmlops.connect(url) as c:
        checker.work.close()
        checker.work = c.conn
        calls = client_calls(c)
        for name, (method, kwargs) in calls.items():
            one_method(checker, c, name, method, kwargs, examples)()
    checker.check.close()
    return {"methods": len(calls), "examples_per_method": examples, **checker.stats,
            "findings": sorted(checker.findings.values()), "sqlstates": dict(sorted(checker.codes.items())),
            "seconds": round(time.monotonic() - started, 1)}


def test_client_methods_reject_bad_input_cleanly(populated: str) -> None:
    figures = exercise_client(populated, int(os.environ.get("PGMLOPS_INJECTION_EXAMPLES", "5")))
    assert figures["rejected"] > 0
    report("injection_client_fast", figures)


@pytest.mark.slow
def test_client_methods_reject_bad_input_cleanly_many(database_factory: Callable[..., str]) -> None:
    report("injection_client_slow", exercise_client(fresh_populated(database_factory, "inj_cli_slow"), SLOW_EXAMPLES))
