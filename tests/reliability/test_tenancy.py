"""Opt-in multi-tenancy (docs/tenancy.md): after mlops.enable_tenancy(), tenant A's role sees
0 rows of tenant B through every table, view and read function, in error messages and in
vector search; both tenants use the same model and experiment names; per-tenant top-k over
HNSW returns k rows (pgvector iterative scans). Without enable_tenancy nothing changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from .test_crash import record

TENANTS = {"a": "tenancy_role_a", "b": "tenancy_role_b"}
OUTSIDER = "tenancy_role_x"  # mlops_admin, bound to no tenant
AB = [{"name": "control", "alias": "champion", "weight": 0.5},
      {"name": "treatment", "alias": "challenger", "weight": 0.5}]
MARK = {"a": "mark_aaa", "b": "mark_bbb"}  # written into every text field a tenant fills
RELS = """select c.oid::regclass::text, c.relkind, c.relispartition
            from pg_catalog.pg_class c
           where c.relnamespace in ('mlops'::regnamespace, 'mlops_features'::regnamespace)
             and c.relkind in ('r', 'p', 'v', 'm') order by 1"""


def sqlstate(conn: psycopg.Connection[Any], query: str, params: Any = None) -> tuple[str | None, str]:
    try:
        conn.execute(query, params)
    except psycopg.Error as e:
        return e.sqlstate, e.diag.message_primary or ""
    return None, ""


def populate(conn: psycopg.Connection[Any], t: str) -> None:
    """Same names for both tenants, plus objects only this tenant has (only_<t>)."""
    m = MARK[t]
    for model in ("churn", f"only_{t}"):
        conn.execute("select mlops.register_model(%s::text, 'classification', description => %s::text)", (model, m))
        for i in (1, 2):
            conn.execute("select mlops.create_model_version(%s::text, artifact => %s::bytea, tags => %s::jsonb)",
                         (model, f"{m}{i}".encode(), Jsonb({"mark": m})))
        conn.execute("select mlops.set_alias(%s::text, 'champion', 1, reason => %s::text)", (model, m))
        conn.execute("select mlops.set_alias(%s::text, 'challenger', 2, reason => %s::text)", (model, m))
    conn.execute("select mlops.submit_training_job('churn', config => %s::jsonb)", (Jsonb({"mark": m}),))
    conn.execute("select mlops.log_prediction('churn', request_id => 'r1', alias => 'champion', score => 0.5,"
                 " label => %s::text, unit_id => 'u1')", (m,))
    conn.execute("select mlops.log_predictions(%s::jsonb)", (Jsonb(
        [{"model": "churn", "request_id": f"r{i}", "version": 1 + i % 2, "label": m, "score": 0.1 * i,
          "unit_id": f"u{i}", "experiment": "ab", "variant": "control" if i % 2 else "treatment"}
         for i in range(2, 40)]),))
    conn.execute("select count(mlops.log_feedback(r, label => %s::text)) from unnest(%s::text[]) r",
                 (m, [f"r{i}" for i in range(1, 40)]))
    for exp in ("ab", f"only_{t}_exp"):
        conn.execute("select mlops.create_experiment(%s::text, variants => %s::jsonb, model => 'churn',"
                     " description => %s::text)", (exp, Jsonb(AB), m))
        conn.execute("select mlops.start_experiment(%s::text)", (exp,))
    conn.execute("select count(*) from mlops.assign_batch('ab', %s::text[])", ([f"u{i}" for i in range(40)],))
    for prof in ("prof", f"only_{t}"):
        conn.execute("select mlops.create_reference_profile(%s::text, model => 'churn')", (prof,))
        conn.execute("select mlops.create_drift_monitor(%s::text || '_mon', %s::text, model => 'churn')", (prof, prof))
        conn.execute("select count(*) from mlops.run_drift_monitor(%s::text || '_mon')", (prof,))
    conn.execute("select mlops.create_entity('customer', 'int8', %s::text)", (m,))
    conn.execute("select mlops.create_feature_group(%s::text, 'customer', %s::json, description => %s::text)",
                 (f"feat_{t}", '{"x": "float8", "tag": "text", "emb": "vector(3)"}', m))
    conn.execute("select mlops.write_features(%s::text, %s::jsonb)", (f"feat_{t}", Jsonb(
        [{"customer_id": k, "event_ts": "2026-01-01", "x": k, "tag": m, "emb": [1, k, 0]} for k in range(1, 6)])))
    conn.execute("select mlops.register_embedding_model('mini', 3, 'test', repeat('a', 64), description => %s::text)",
                 (m,))
    spine = "select k::int8 as customer_id, '2026-01-02'::timestamptz as event_ts from generate_series(1, 5) k"
    conn.execute("select mlops.create_training_set(%s::text, %s::text, %s::text[])",
                 (f"ts_{t}", spine, [f"feat_{t}:x", f"feat_{t}:tag"]))


@pytest.fixture(scope="module", params=["extension", pytest.param("bundled", marks=pytest.mark.slow)])
def tenancy(database_factory: Callable[..., str], request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    dsn = database_factory(request.param, prefix=f"tenancy_{request.param}")
    with psycopg.connect(dsn, autocommit=True) as su:
        for role in [*TENANTS.values(), OUTSIDER]:
            su.execute(sql.SQL("do $$ begin if not exists (select from pg_roles where rolname = {r}) then "
                               "create role {i} login; end if; end $$").format(r=sql.Literal(role),
                                                                                 i=sql.Identifier(role)))
            su.execute(sql.SQL("grant mlops_admin to {}").format(sql.Identifier(role)))
        su.execute("do $$ begin if not exists (select from pg_roles where rolname = 'mlops_owner') then "
                   "create role mlops_owner nologin; end if; end $$")
        summary = su.execute("select mlops.enable_tenancy(owner => 'mlops_owner')").fetchone()
        assert summary is not None and summary[0]["tables"] >= 20 and summary[0]["keys_rebuilt"] >= 5
        for tenant, role in TENANTS.items():
            su.execute("select mlops.add_tenant_role(%s, %s::regrole)", (tenant, role))
    dsns = {t: make_conninfo(dsn, user=role, options=f"-c mlops.tenant={t}") for t, role in TENANTS.items()}
    for t, d in dsns.items():
        with psycopg.connect(d, autocommit=True) as c:
            populate(c, t)
    with psycopg.connect(dsn, autocommit=True) as su:
        # mlops_admin may not create embedding syncs (no INSERT on mlops.embedding_syncs, embeddings room):
        # the superuser makes B's, acting for B
        su.execute("set mlops.tenant = 'b'")
        su.execute("create schema tenancy_b")
        su.execute("create table tenancy_b.docs (id int primary key, body text)")
        su.execute("insert into tenancy_b.docs values (1, 'mark_bbb doc')")
        su.execute("select mlops.create_embedding_sync('only_b_sync', 'tenancy_b.docs', columns => '{body}', "
                   "model => 'mini')")
    yield {"su": dsn, **dsns, "x": make_conninfo(dsn, user=OUTSIDER)}


def test_every_table_and_view_shows_only_the_own_tenant(tenancy: dict[str, str]) -> None:
    with psycopg.connect(tenancy["su"], autocommit=True) as su, psycopg.connect(tenancy["a"], autocommit=True) as a:
        rels = su.execute(RELS).fetchall()
        # the check can fail: the superuser (who bypasses RLS) sees B's rows in many relations
        marked = "select count(*) from {} t where t::text like {}"
        seen_by_su = [r for r, _, _ in rels if su.execute(sql.SQL(marked).format(
            sql.SQL(r), sql.Literal(f"%{MARK['b']}%"))).fetchone() != (0,)]
        assert len(seen_by_su) >= 10, seen_by_su
        readable, leaks, own = 0, [], 0
        for rel, kind, is_partition in rels:
            if not a.execute("select has_table_privilege(current_user, %s::regclass, 'select')", (rel,)).fetchone()[0]:  # type: ignore[index]
                continue
            readable += 1
            assert not is_partition, f"{rel}: a partition readable by a tenant role bypasses the parent's policy"
            rows = a.execute(sql.SQL("select t::text from {} t").format(sql.SQL(rel))).fetchall()
            leaks += [(rel, r[0][:120]) for r in rows if MARK["b"] in r[0]]
            own += sum(MARK["a"] in r[0] for r in rows)
            has_tenant = a.execute("select exists (select from pg_attribute where attrelid = %s::regclass "
                                   "and attname = 'tenant' and not attisdropped)", (rel,)).fetchone()
            if kind in ("r", "p") and has_tenant == (True,):
                others = sql.SQL("select count(*) from {} where tenant <> 'a'").format(sql.SQL(rel))
                assert a.execute(others).fetchone() == (0,), rel
        assert leaks == []
        assert readable >= 40 and own >= 100  # A does see its own data through them
        # planner statistics (most common values) of RLS tables are hidden from tenant roles
        su.execute("analyze")
        assert su.execute("select count(*) from pg_stats where schemaname = 'mlops' and tablename = 'models'"
                          ).fetchone() != (0,)
        assert a.execute("""select count(*) from pg_stats s join pg_class c on c.oid = format('%I.%I', s.schemaname,
                              s.tablename)::regclass where s.schemaname in ('mlops', 'mlops_features')
                              and c.relrowsecurity""").fetchone() == (0,)
        record("test_tenancy", relations_checked=readable, own_rows_seen=own, leaked_rows=len(leaks),
               relations_where_superuser_sees_b=len(seen_by_su))


def test_same_names_for_both_tenants(tenancy: dict[str, str]) -> None:
    for t in TENANTS:
        with psycopg.connect(tenancy[t], autocommit=True) as c:
            v = c.execute("select tags ->> 'mark' from mlops.get_version('churn', 'champion')").fetchone()
            assert v == (MARK[t],)
            assert c.execute("select count(*), min(description) from mlops.models").fetchone() == (3, MARK[t])
            res = c.execute("select count(*) from mlops.experiment_results('ab')").fetchone()
            assert res is not None and res[0] == 2
            online = c.execute("select values::text from mlops.get_online_features('customer', '{1,2}', %s)",
                               ([f"feat_{t}:tag"],)).fetchall()
            assert len(online) == 2 and all(MARK[t] in r[0] for r in online)
            # request ids are per tenant: both logged r1, each sees its own prediction
            p = c.execute("select label from mlops.predictions where request_id = 'r1'").fetchall()
            assert p == [(MARK[t],)]
            # training sets (CREATE TABLE AS, covered by the event trigger): own one full, the other's empty
            own = c.execute(sql.SQL("select count(*), min(tag) from mlops_features.{}").format(
                sql.Identifier(f"ts_{t}"))).fetchone()
            assert own == (5, MARK[t])
            other = "b" if t == "a" else "a"
            assert c.execute(sql.SQL("select count(*) from mlops_features.{}").format(
                sql.Identifier(f"ts_{other}"))).fetchone() == (0,)
            lineage = c.execute("select count(*) from mlops.training_sets").fetchone()
            assert lineage == (1,)


def test_other_tenants_objects_look_like_missing_ones(tenancy: dict[str, str]) -> None:
    """Calls naming B's objects fail exactly like calls naming objects that never existed."""
    calls = [
        "select mlops.get_version({}, 'champion')",
        "select mlops.predict_sql({}, 'champion', '{{1}}'::float8[])",
        "select mlops.log_prediction({}, score => 1)",
        "select mlops.set_alias({}, 'champion', 1)",
        "select mlops.submit_training_job({})",
        "select * from mlops.experiment_results({}::text || '_exp')",
        "select mlops.assign({}::text || '_exp', 'u1')",
        "select * from mlops.get_online_features('customer', '{{1}}', array[{}::text || ':x'])",
        "select mlops.write_features({}, '[]')",
        "select count(*) from mlops.run_drift_monitor({}::text || '_mon')",
        "select * from mlops.similar({}::text || '_sync', '[1,0,0]', 3)",
        "select mlops.create_training_set('ts_copy', 'select 1::int8 as customer_id, now() as event_ts', "
        "array[{}::text || ':x'])",
    ]
    with psycopg.connect(tenancy["a"], autocommit=True) as a:
        for call in calls:
            for name in ("only_b", "feat_b"):
                other = sqlstate(a, call.format(f"'{name}'"))
                never = sqlstate(a, call.format("'never_seen'"))
                assert other[0] is not None, f"{call} with {name} succeeded for tenant a"
                assert other == (never[0], never[1].replace("never_seen", name)), (call, other, never)


def test_writes_need_a_bound_tenant(tenancy: dict[str, str]) -> None:
    x = make_conninfo(tenancy["x"], options="-c mlops.tenant=a")  # outsider claims tenant a
    with psycopg.connect(x, autocommit=True) as c:
        assert c.execute("select mlops.current_tenant()").fetchone() == (None,)
        assert c.execute("select count(*) from mlops.models").fetchone() == (0,)
        state, msg = sqlstate(c, "select mlops.register_model('intruder', 'classification')")
        assert state == "42501" and "may not act for tenant a" in msg
    with psycopg.connect(tenancy["x"], autocommit=True) as c:
        state, msg = sqlstate(c, "select mlops.register_model('intruder', 'classification')")
        assert state == "22023" and "mlops.tenant is not set" in msg
    with psycopg.connect(tenancy["a"], autocommit=True) as a:
        # a tenant cannot switch to another tenant it is not bound to
        a.execute("set mlops.tenant = 'b'")
        assert a.execute("select count(*) from mlops.models").fetchone() == (0,)
        a.execute("reset mlops.tenant")
    with psycopg.connect(tenancy["b"], autocommit=True) as b:
        # B may not write into A's feature tables (pinned to the tenant that created them)
        state, _ = sqlstate(b, "insert into mlops_features.feat_a__v1 (customer_id, event_ts, x) values (99, now(), 1)")
        assert state == "42501"
        # nor forge rows of A in shared tables
        state, _ = sqlstate(b, "insert into mlops.entities (tenant, name, key_type, key_column) "
                               "values ('a', 'forged', 'int8', 'k')")
        assert state == "42501"


def test_tables_outside_our_schemas_are_untouched(tenancy: dict[str, str]) -> None:
    """The event trigger fires on every CREATE TABLE of the database, also for roles that may
    not use schema mlops: it must leave their tables alone."""
    with psycopg.connect(tenancy["su"], autocommit=True) as su:
        su.execute("do $$ begin if not exists (select from pg_roles where rolname = 'tenancy_role_plain') then "
                   "create role tenancy_role_plain login; end if; end $$")
    with psycopg.connect(make_conninfo(tenancy["su"], user="tenancy_role_plain"), autocommit=True) as c:
        assert c.execute("select has_schema_privilege('mlops', 'usage')").fetchone() == (False,)
        c.execute("create temp table plain_t (x int)")
        c.execute("create temp table plain_ctas as select 1 as x")
        assert c.execute("select count(*) from pg_attribute where attrelid in ('plain_t'::regclass, "
                         "'plain_ctas'::regclass) and attname = 'tenant'").fetchone() == (0,)


def test_security_definer_functions_do_not_bypass(tenancy: dict[str, str]) -> None:
    with psycopg.connect(tenancy["su"], autocommit=True) as su:
        owners = su.execute("""select p.oid::regprocedure::text, r.rolsuper or r.rolbypassrls from pg_proc p
                                join pg_roles r on r.oid = p.proowner
                               where p.pronamespace = 'mlops'::regnamespace and p.prosecdef""").fetchall()
        assert owners and [o for o in owners if o[1]] == []
        tables = su.execute("""select c.oid::regclass::text, c.relrowsecurity and c.relforcerowsecurity, r.rolsuper
                                 from pg_class c join pg_roles r on r.oid = c.relowner
                                where c.relnamespace in ('mlops'::regnamespace, 'mlops_features'::regnamespace)
                                  and c.relkind in ('r', 'p') and not c.relispartition
                                  and not mlops._tenancy_excluded(c.oid::regclass)""").fetchall()
        assert len(tables) >= 25 and [t for t in tables if not t[1] or t[2]] == []
    with psycopg.connect(tenancy["a"], autocommit=True) as a:
        # log_prediction is SECURITY DEFINER: its model lookup is still tenant-scoped
        state, msg = sqlstate(a, "select mlops.log_prediction('only_b', score => 1)")
        assert state == "42704" and "unknown model" in msg


def test_per_tenant_hnsw_top_k(tenancy: dict[str, str]) -> None:
    """B's 2,000 vectors all lie nearer the query than A's 30: a plain HNSW scan (ef_search 40)
    finds only B's, which the policy removes; the iterative scan keeps going until A has k."""
    with psycopg.connect(tenancy["su"], autocommit=True) as su:
        su.execute("create table mlops.tenancy_probe (id bigint generated always as identity primary key, "
                   "emb vector(3) not null)")  # a table a later version adds: the event trigger covers it
        su.execute("grant select, insert on mlops.tenancy_probe to mlops_writer")
        su.execute("create index on mlops.tenancy_probe using hnsw (emb vector_cosine_ops)")
    with psycopg.connect(tenancy["b"], autocommit=True) as b:
        b.execute("insert into mlops.tenancy_probe (emb) select array[1, i * 1e-4, 0]::vector(3) "
                  "from generate_series(1, 2000) i")
    with psycopg.connect(tenancy["a"], autocommit=True) as a:
        a.execute("insert into mlops.tenancy_probe (emb) select array[0.2, 1, i * 1e-2]::vector(3) "
                  "from generate_series(1, 30) i")
        a.execute("set enable_seqscan = off")
        q = "select id, tenant from mlops.tenancy_probe order by emb <=> '[1,0,0]' limit 10"
        plan = "\n".join(r[0] for r in a.execute("explain " + q).fetchall())
        assert "tenancy_probe_emb_idx" in plan, plan
        a.execute("set hnsw.iterative_scan = off")
        plain = a.execute(q).fetchall()
        a.execute("set hnsw.iterative_scan = relaxed_order")
        iterative = a.execute(q).fetchall()
        assert len(plain) < 10  # without iterative scans the tenant gets fewer than k rows
        assert len(iterative) == 10 and {t for _, t in iterative} == {"a"}
        record("test_tenancy_hnsw", k=10, tenant_rows=30, other_tenant_rows=2000, plain_scan_rows=len(plain),
               iterative_scan_rows=len(iterative))


def test_enable_tenancy_checks(tenancy: dict[str, str]) -> None:
    with psycopg.connect(tenancy["su"], autocommit=True) as su:
        assert sqlstate(su, "select mlops.enable_tenancy('mlops_owner')")[0] == "55000"
        assert sqlstate(su, "select mlops.add_tenant_role('Bad Tenant', 'mlops_reader')")[0] == "22023"
    with psycopg.connect(tenancy["a"], autocommit=True) as a:
        assert sqlstate(a, "select mlops.enable_tenancy('mlops_owner')")[0] == "42501"  # PUBLIC has no EXECUTE
        # dropping prediction partitions would drop every tenant's rows: operator (superuser) only
        for call in ("select mlops.drop_predictions_before(now())", "select mlops.maintain_predictions()",
                     "select mlops.configure_predictions(premake => 1)"):
            assert sqlstate(a, call)[0] == "42501", call
        assert a.execute("select count(*) from mlops.predictions").fetchone() == (39,)


def test_without_enable_tenancy_nothing_changes(database_factory: Callable[..., str]) -> None:
    dsn = database_factory("extension", prefix="notenancy")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("select mlops.tenancy_enabled()").fetchone() == (False,)
        assert conn.execute("""select count(*) from pg_class c
                                where c.relnamespace in ('mlops'::regnamespace, 'mlops_features'::regnamespace)
                                  and c.relkind in ('r', 'p') and c.oid <> 'mlops.tenant_roles'::regclass
                                  and (c.relrowsecurity or exists (select from pg_attribute a where a.attrelid = c.oid
                                                                      and a.attname = 'tenant'))""").fetchone() == (0,)
        assert conn.execute("select count(*) from pg_event_trigger where evtname = 'mlops_tenancy'").fetchone() == (0,)
        assert conn.execute("""select c.relname from pg_class c join pg_roles r on r.oid = c.relowner
                                where c.relnamespace = 'mlops'::regnamespace and not r.rolsuper""").fetchall() == []
        assert sqlstate(conn, "select mlops.enable_tenancy(null)")[0] == "22004"
        assert sqlstate(conn, "select mlops.enable_tenancy('postgres')")[0] == "22023"  # a superuser bypasses RLS
        assert sqlstate(conn, "select mlops.enable_tenancy('mlops_reader', 'Bad Tenant')")[0] == "22023"
        assert conn.execute("select mlops.tenancy_enabled()").fetchone() == (False,)  # refused calls changed nothing
        # the unique keys are the original ones: a second model of the same name is refused
        conn.execute("select mlops.register_model('dup', 'classification')")
        assert conn.execute("select pg_get_constraintdef(oid) from pg_constraint where conname = 'models_name_key'"
                            ).fetchone() == ("UNIQUE (name)",)


def test_log_many_under_row_level_security(tenancy: dict[str, str]) -> None:
    # PostgreSQL refuses COPY FROM into a table with row-level security: the client's direct
    # path gives way to the staging path, which logs into the caller's tenant only
    import pandas as pd
    import pgmlops

    df = pd.DataFrame({"model": "churn", "version": 1, "label": MARK["a"], "request_id": [f"lm{i}" for i in range(5)]})
    with pgmlops.connect(tenancy["a"]) as client:
        assert client.predictions.log_many(df, progress=False) == 5
        assert client.predictions.log_many(df, progress=False) == 0
    with psycopg.connect(tenancy["a"]) as a, psycopg.connect(tenancy["b"]) as b:
        assert a.execute("select count(*) from mlops.predictions where request_id like 'lm%%'").fetchone() == (5,)
        assert b.execute("select count(*) from mlops.predictions where request_id like 'lm%%'").fetchone() == (0,)
