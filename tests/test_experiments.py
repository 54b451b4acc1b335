"""A/B experiments: GrowthBook-compatible hashing and bucketing (vectors + SDK oracle), uniformity,
stickiness, coverage ramps, namespaces, statuses, bad input, concurrency of first exposures."""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pgmlops
import psycopg
import pytest
from growthbook import Experiment as GbExperiment
from growthbook import GrowthBook
from growthbook.core import chooseVariation, gbhash, getBucketRanges, inNamespace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb
from scipy import stats

CASES = json.loads((Path(__file__).parent / "data" / "growthbook_cases.json").read_text())
HALF = [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}]


def create(conn: psycopg.Connection[Any], name: str, variants: list[dict[str, Any]] | None = None,
           start: bool = True, **kw: Any) -> None:
    if "namespace_range" in kw:
        kw["namespace_range"] = [float(x) for x in kw["namespace_range"]]
    args = ", ".join(f"{k} => %({k})s" for k in kw)
    conn.execute(f"select mlops.create_experiment(%(name)s::text, variants => %(variants)s::jsonb"
                 f"{', ' + args if args else ''})", {"name": name, "variants": Jsonb(variants or HALF), **kw})
    if start:
        conn.execute("select mlops.start_experiment(%s::text)", (name,))


def batch(conn: psycopg.Connection[Any], exp: str, ids: list[str], record: bool = True) -> list[str | None]:
    rows = conn.execute("select variant from mlops.assign_batch(%s::text, %s::text[], %s::boolean)",
                        (exp, ids, record)).fetchall()
    return [r[0] for r in rows]


def sqlstate(conn: psycopg.Connection[Any], query: str, params: Any = None) -> str:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(query, params)
    assert info.value.diag.message_primary
    return str(info.value.sqlstate)


def hint(conn: psycopg.Connection[Any], query: str) -> str:
    """The HINT of the error the query raises (lifecycle errors say what to do next)."""
    with pytest.raises(psycopg.Error) as info:
        conn.execute(query)
    return str(info.value.diag.message_hint)


ACCEL = "mlops._gb_assign_py(text, text[], float8[], text, integer, integer, bigint[], integer[])"


@pytest.fixture(scope="module")
def sql_only_dsn(database_factory: Any) -> str:
    """A database with pgmlops alone: assign_batch takes its SQL path (no numpy accelerator)."""
    return str(database_factory(python=False, prefix="exp_sql"))


@pytest.fixture(params=["numpy", "sql"])
def pconn(request: pytest.FixtureRequest, dsn: str, sql_only_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection where assign_batch runs through the numpy accelerator of pgmlops_python, or through
    the SQL path (database without the companion): both must give the SDK's answers."""
    with psycopg.connect(dsn if request.param == "numpy" else sql_only_dsn, autocommit=True) as c:
        installed = c.execute("select pg_catalog.to_regprocedure(%s) is not null", (ACCEL,)).fetchone()
        assert installed == (request.param == "numpy",)
        yield c


# --- GrowthBook vectors -------------------------------------------------------------------------

def test_hash_vectors_bit_for_bit(conn: psycopg.Connection[Any]) -> None:
    cases = CASES["hash"]
    got = conn.execute(
        "select mlops.gb_hash(s, v, ver) from unnest(%s::text[], %s::text[], %s::int[]) with ordinality u(s, v, ver, o)"
        " order by o", ([c[0] for c in cases], [c[1] for c in cases], [c[2] for c in cases])).fetchall()
    mismatches = [(c, g[0]) for c, g in zip(cases, got, strict=True) if c[3] != g[0]]
    assert not mismatches, mismatches[:5]
    assert any(ord(ch) > 127 for c in cases for ch in c[1])  # the vectors exercise non-ASCII ids


def test_batch_hash_matches_vectors(conn: psycopg.Connection[Any]) -> None:
    by_seed: dict[tuple[str, int], list[tuple[str, float]]] = {}
    for seed, value, version, expected in CASES["hash"]:
        if version in (1, 2):
            by_seed.setdefault((seed, version), []).append((value, expected))
    for (seed, version), pairs in by_seed.items():
        rows = conn.execute("select unit_id, n from mlops.gb_hash_batch(%s::text, %s::text[], %s::int) order by ord",
                            (seed, [p[0] for p in pairs], version)).fetchall()
        assert [(r[0], r[1]) for r in rows] == pairs, (seed, version)


def test_bucket_ranges_and_choose_variation_vectors(conn: psycopg.Connection[Any]) -> None:
    for _nv, coverage, weights, expected in CASES["getBucketRanges"]:
        rows = conn.execute("select range_start, range_end from mlops.gb_bucket_ranges(%s::float8[], %s::float8)"
                            " order by variant", ([float(w) for w in weights], coverage)).fetchall()
        assert [list(r) for r in rows] == expected, (weights, coverage)
    for n, ranges, expected in CASES["chooseVariation"]:
        row = conn.execute("select mlops.gb_choose_variation(%s::float8, %s::float8[], %s::float8[])",
                           (n, [float(r[0]) for r in ranges], [float(r[1]) for r in ranges])).fetchone()
        assert row is not None and row[0] == expected, (n, ranges)
    for unit, (ns, lo, hi), expected in CASES["inNamespace"]:
        if unit == "":
            continue
        row = conn.execute("select mlops.gb_in_namespace(%s::text, %s::text, %s::float8, %s::float8)",
                           (unit, ns, lo, hi)).fetchone()
        assert row is not None and row[0] == expected, (unit, ns)


# PostgreSQL text holds any Unicode scalar except NUL: no surrogates, no "\x00".
PG_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=70)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=PG_TEXT, values=st.lists(PG_TEXT.filter(bool), min_size=1, max_size=8))
def test_hash_property_matches_sdk_for_any_text(conn: psycopg.Connection[Any], seed: str, values: list[str]) -> None:
    """Cross-SDK mismatches come from non-ASCII ids: any text, single and batch, v1 and v2, equals the SDK."""
    rows = conn.execute("select mlops.gb_hash(%s::text, v, 2), mlops.gb_hash(%s::text, v, 1) from unnest(%s::text[])"
                        " with ordinality u(v, o) order by o", (seed, seed, values)).fetchall()
    assert rows == [(gbhash(seed, v, 2), gbhash(seed, v, 1)) for v in values]
    for version in (1, 2):
        batch_rows = conn.execute("select n from mlops.gb_hash_batch(%s::text, %s::text[], %s::int) order by ord",
                                  (seed, values, version)).fetchall()
        assert [r[0] for r in batch_rows] == [gbhash(seed, v, version) for v in values]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=PG_TEXT, values=st.lists(PG_TEXT.filter(bool), min_size=1, max_size=30),
       weights=st.sampled_from([[0.5, 0.5], [0.2, 0.3, 0.5], [0.1, 0.0, 0.9]]),
       coverage=st.sampled_from([1.0, 0.6]), namespace=st.sampled_from([None, ("gbns", 0.2, 0.7), ("ü", 0.0, 0.5)]))
def test_numpy_accelerator_matches_sdk_for_any_text(conn: psycopg.Connection[Any], seed: str, values: list[str],
                                                    weights: list[float], coverage: float,
                                                    namespace: tuple[str, float, float] | None) -> None:
    """The numpy assignment of pgmlops_python (variant position or -1 per id) is the SDK's on any text."""
    ranges = getBucketRanges(len(weights), coverage, weights)
    ns = [k for k in range(1000) if namespace and namespace[1] <= k / 1000 < namespace[2]]
    sticky = list(range(0, len(values), 3))  # every third id comes with a sticky variant: coded -2 - v
    got = conn.execute("select mlops._gb_assign_py(%s::text, %s::text[], %s::float8[], %s::text, %s::int, %s::int,"
                       " %s::bigint[], %s::int[])",
                       (seed, values, [float(x) for r in ranges for x in r], "__" + namespace[0] if namespace else None,
                        min(ns, default=1), max(ns, default=0), [i + 1 for i in sticky], [i % 5 for i in sticky])
                       ).fetchone()
    def sdk(v: str) -> int:
        n = gbhash(seed, v, 2)
        assert n is not None
        return -1 if namespace and not inNamespace(v, namespace) else chooseVariation(n, ranges)

    expected = [-2 - i % 5 if i % 3 == 0 else sdk(v) for i, v in enumerate(values)]
    assert got == (expected,)


def test_numpy_accelerator_and_sql_path_agree_on_a_mixed_batch(conn: psycopg.Connection[Any],
                                                               sql_only_dsn: str) -> None:
    """The same experiment in both databases: identical answers and identical recorded assignments for
    ids of every length (including ids longer than 64 bytes, and a few very long ones), any script."""
    rng = random.Random(6)
    alphabet = "abcXYZ019-_ üé日本😀€"
    ids = ([f"user-{i}" for i in range(3000)]
           + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 90))) for _ in range(3000)]
           + ["x" * 5000, "😀" * 300, "y" * 700, "user-1", "user-2"])
    with psycopg.connect(sql_only_dsn, autocommit=True) as other:
        answers, recorded = [], []
        for c in (conn, other):
            create(c, "paths", [{"name": n, "weight": w} for n, w in (("a", 0.2), ("b", 0.3), ("c", 0.5))],
                   coverage=0.9, seed="s😀", namespace="paths", namespace_range=[0.1, 0.8])
            answers.append((batch(c, "paths", ids, record=False), batch(c, "paths", ids), batch(c, "paths", ids)))
            recorded.append(c.execute("select unit_id, variant from mlops.experiment_assignments a"
                                      " join mlops.experiments e on e.id = a.experiment_id"
                                      " where e.name = 'paths' order by unit_id").fetchall())
    assert answers[0] == answers[1]
    assert answers[0][0] == answers[0][1] == answers[0][2]
    assert recorded[0] == recorded[1] and 0 < len(recorded[0]) < len(set(ids))
    assert set(answers[0][0]) == {"a", "b", "c", None}


@pytest.mark.parametrize(("weights", "coverage", "seed", "namespace"), [
    ([0.5, 0.5], 1.0, "", None),
    ([0.2, 0.3, 0.5], 0.6, "s33d", None),
    ([0.1, 0.9], 0.85, "", ("gbns", 0.2, 0.7)),
])
def test_same_variant_as_growthbook_sdk(pconn: psycopg.Connection[Any], weights: list[float], coverage: float,
                                        seed: str, namespace: tuple[str, float, float] | None) -> None:
    name = f"sdk_{len(weights)}_{int(coverage * 100)}"
    names = [f"v{i}" for i in range(len(weights))]
    create(pconn, name, [{"name": n, "weight": w} for n, w in zip(names, weights, strict=True)],
           coverage=coverage, seed=seed, namespace=namespace[0] if namespace else None,
           namespace_range=list(namespace[1:]) if namespace else [0, 1])
    # ASCII, non-ASCII (beyond the BMP too), ids longer than the unrolled SQL hash (64 bytes), one repeated
    ids = [f"user-{i}" for i in range(1500)] + ["ünï-1", "😀-2", "日本-3", "L" * 65, "long-😀" * 40, "q" * 3000,
                                                 "user-7"]
    # single assigns first, so they bucket new units themselves (after the batch they would be sticky)
    single = [pconn.execute("select mlops.assign(%s::text, %s::text)", (name, u)).fetchone() for u in ids[:50]]
    got = batch(pconn, name, ids)  # 50 sticky units, the rest new
    exp = GbExperiment(key=name, variations=list(range(len(weights))), weights=weights, coverage=coverage,
                       seed=seed or None, hashVersion=2, namespace=namespace)
    expected = []
    for u in ids:
        r = GrowthBook(attributes={"id": u}).run(exp)
        expected.append(names[r.variationId] if r.inExperiment else None)
    assert got == expected
    assert [s[0] if s else None for s in single] == expected[:50]
    # every variant occurs, and "not in the experiment" exactly when coverage or a namespace leave units out
    assert len(set(got)) == len(weights) + (coverage < 1 or namespace is not None)


def test_uniformity_chi_square_100k(conn: psycopg.Connection[Any]) -> None:
    create(conn, "uniform", [{"name": "a", "weight": 0.25}, {"name": "b", "weight": 0.25},
                             {"name": "c", "weight": 0.5}])
    rows = conn.execute("select variant, count(*) from mlops.assign_batch('uniform',"
                        " array(select 'uid_' || g from generate_series(1, 100000) g), false) group by 1"
                        " order by 1").fetchall()
    counts = [r[1] for r in rows]
    assert [r[0] for r in rows] == ["a", "b", "c"] and sum(counts) == 100000
    chi = stats.chisquare(counts, [25000, 25000, 50000])
    assert chi.pvalue > 0.001
    srm = conn.execute("select chi2, p_value from mlops.srm_test(%s::bigint[], '{0.25,0.25,0.5}')",
                       (counts,)).fetchone()
    assert srm is not None
    assert srm[0] == pytest.approx(chi.statistic, rel=1e-12) and srm[1] == pytest.approx(chi.pvalue, rel=1e-9)
    # bucket values themselves are uniform over [0, 1)
    n = conn.execute("select array_agg(n) from mlops.gb_hash_batch('u', array(select 'x' || g from"
                     " generate_series(1, 20000) g))").fetchone()
    assert n is not None and stats.kstest(n[0], "uniform").pvalue > 0.001


# --- stickiness, coverage, namespaces -------------------------------------------------------------

def test_sticky_across_weight_changes(pconn: psycopg.Connection[Any]) -> None:
    create(pconn, "sticky")
    ids = [f"s{i}" for i in range(3000)]
    before = batch(pconn, "sticky", ids)
    pconn.execute("select mlops.set_experiment_traffic('sticky', weights => '{0.1, 0.9}')")
    after = batch(pconn, "sticky", ids)
    assert after == before
    assert [pconn.execute("select mlops.assign('sticky', %s::text)", (u,)).fetchone()[0]  # type: ignore[index]
            for u in ids[:30]] == before[:30]
    fresh = batch(pconn, "sticky", [f"n{i}" for i in range(3000)])
    share = fresh.count("treatment") / len(fresh)
    assert 0.85 < share < 0.95  # new units follow the new weights
    # without stickiness some units would have moved
    recomputed = batch(pconn, "sticky", ids, record=False)
    assert recomputed == before
    assert pconn.execute("select count(*) from mlops.experiment_assignments a join mlops.experiments e"
                        " on e.id = a.experiment_id where e.name = 'sticky'").fetchone() == (6000,)


def test_batch_mixes_sticky_new_and_duplicate_ids_in_input_order(pconn: psycopg.Connection[Any]) -> None:
    """One batch holding units assigned before a weight change, new units (ids of 1 to 80 characters,
    ASCII and not) and repeated ids: input order, sticky variants kept, each first exposure recorded once."""
    create(pconn, "mixed")
    old = [f"o{i}" for i in range(400)]
    before = batch(pconn, "mixed", old)
    pconn.execute("select mlops.set_experiment_traffic('mixed', weights => '{0.9, 0.1}')")
    new = ["x" * n for n in range(1, 81)] + [f"é{i}" for i in range(20)] + [f"n{i}" for i in range(400)]
    ids = [u for pair in zip(old, new, strict=False) for u in pair] + new[400:] + old[:50] + new[:50]
    got = batch(pconn, "mixed", ids)

    def sdk(u: str, weights: list[float]) -> str:
        r = GrowthBook(attributes={"id": u}).run(GbExperiment(key="mixed", variations=[0, 1], weights=weights,
                                                                 hashVersion=2))
        return ["control", "treatment"][r.variationId]

    assert before == [sdk(u, [0.5, 0.5]) for u in old]
    expected = {**{u: sdk(u, [0.9, 0.1]) for u in new}, **dict(zip(old, before, strict=True))}
    assert got == [expected[u] for u in ids]
    assert any(expected[u] != sdk(u, [0.9, 0.1]) for u in old)  # stickiness is actually exercised
    assert [pconn.execute("select mlops.assign('mixed', %s::text)", (u,)).fetchone()[0]  # type: ignore[index]
            for u in old + new] == [expected[u] for u in old + new]
    rows = pconn.execute("select count(*), count(distinct unit_id) from mlops.experiment_assignments a"
                        " join mlops.experiments e on e.id = a.experiment_id where e.name = 'mixed'").fetchone()
    assert rows == (len(old) + len(new),) * 2
    # a small batch against many assigned units looks them up by index probes instead of a hash join
    small = [*old[:3], "late", *new[-2:]]
    assert batch(pconn, "mixed", small) == [sdk("late", [0.9, 0.1]) if u == "late" else expected[u] for u in small]
    assert batch(pconn, "mixed", []) == [] and batch(pconn, "mixed", [], record=False) == []


def test_client_assign_batch_frame_matches_sql_in_input_order(pconn: psycopg.Connection[Any]) -> None:
    """The client's assign_batch (variants back as one array per chunk) gives a row per input id, in
    input order, equal to the SQL function: sticky, new, repeated, non-ASCII and uncovered ids, chunked."""
    create(pconn, "client_batch", coverage=0.6)
    sticky = batch(pconn, "client_batch", [f"s{i}" for i in range(30)])
    ids = [f"s{i}" for i in range(30)] + [f"n{i}" for i in range(60)] + ["é😀", "n3", "s4", "x" * 120]
    with pgmlops.connect(pconn.info.dsn) as client:
        got = client.experiments.assign_batch("client_batch", ids, chunk_size=7)
        assert client.experiments.assign_batch("client_batch", []).empty
    assert list(got.columns) == ["unit_id", "variant"] and list(got["unit_id"]) == ids
    variants = [None if pd.isna(v) else v for v in got["variant"]]
    assert variants == batch(pconn, "client_batch", ids, record=False)
    assert variants[:30] == sticky and None in variants and {"control", "treatment"} <= set(variants)


def test_coverage_ramp_only_adds_units(pconn: psycopg.Connection[Any]) -> None:
    create(pconn, "ramp", coverage=0.2)
    ids = [f"r{i}" for i in range(4000)]
    phases = []
    for cov in (0.2, 0.5, 1.0):
        if cov != 0.2:
            pconn.execute("select mlops.set_experiment_traffic('ramp', coverage => %s::float8)", (cov,))
        phases.append(batch(pconn, "ramp", ids))
    for low, high in itertools.pairwise(phases):
        assert all(h == lo for lo, h in zip(low, high, strict=True) if lo is not None)
        assert sum(v is not None for v in high) > sum(v is not None for v in low)
    assert all(v is not None for v in phases[-1])
    assert 0.15 < sum(v is not None for v in phases[0]) / len(ids) < 0.25


def test_paused_batch_keeps_sticky_units_and_records_nothing(pconn: psycopg.Connection[Any]) -> None:
    create(pconn, "paused_batch")
    old = [f"p{i}" for i in range(500)]
    before = batch(pconn, "paused_batch", old)
    pconn.execute("select mlops.pause_experiment('paused_batch')")
    new = [f"q{i}" for i in range(500)]
    assert batch(pconn, "paused_batch", [*new, *old, new[0]]) == [None] * 500 + before + [None]
    assert pconn.execute("select count(*) from mlops.experiment_assignments a join mlops.experiments e"
                         " on e.id = a.experiment_id where e.name = 'paused_batch'").fetchone() == (500,)


def test_namespaces_are_mutually_exclusive(pconn: psycopg.Connection[Any]) -> None:
    create(pconn, "ns_left", namespace="checkout", namespace_range=[0, 0.5])
    create(pconn, "ns_right", namespace="checkout", namespace_range=[0.5, 1])
    ids = [f"m{i}" for i in range(4000)]
    left, right = batch(pconn, "ns_left", ids), batch(pconn, "ns_right", ids)
    assert not any(a is not None and b is not None for a, b in zip(left, right, strict=True))
    assert all(a is not None or b is not None for a, b in zip(left, right, strict=True))
    before = pconn.execute("select count(*) from mlops.experiments").fetchone()
    assert sqlstate(pconn, "select mlops.create_experiment('ns_overlap', variants => %s::jsonb,"
                    " namespace => 'checkout', namespace_range => '{0.4, 0.6}')", (Jsonb(HALF),)) == "23P01"
    assert pconn.execute("select count(*) from mlops.experiments").fetchone() == before


# --- statuses -------------------------------------------------------------------------------------

def test_status_transitions(conn: psycopg.Connection[Any]) -> None:
    create(conn, "life", start=False)
    assert sqlstate(conn, "select mlops.assign('life', 'u1')") == "55000"
    assert sqlstate(conn, "select mlops.pause_experiment('life')") == "55000"
    assert "mlops.start_experiment" in hint(conn, "select mlops.pause_experiment('life')")
    assert "mlops.start_experiment" in hint(conn, "select mlops.assign('life', 'u1')")
    conn.execute("select mlops.start_experiment('life')")
    assert sqlstate(conn, "select mlops.start_experiment('life')") == "55000"
    assert hint(conn, "select mlops.start_experiment('life')") == "It is already running."
    first = conn.execute("select mlops.assign('life', 'u1')").fetchone()
    assert first is not None and first[0] in ("control", "treatment")
    conn.execute("select mlops.pause_experiment('life')")
    assert conn.execute("select mlops.assign('life', 'u1')").fetchone() == first  # sticky while paused
    assert conn.execute("select mlops.assign('life', 'u2')").fetchone() == (None,)  # nobody new enters
    conn.execute("select mlops.start_experiment('life')")
    conn.execute("select mlops.conclude_experiment('life', promote => false)")
    assert sqlstate(conn, "select mlops.assign('life', 'u1')") == "55000"
    assert sqlstate(conn, "select * from mlops.assign_batch('life', '{u1}')") == "55000"
    assert sqlstate(conn, "select mlops.start_experiment('life')") == "55000"
    assert sqlstate(conn, "select mlops.conclude_experiment('life')") == "55000"
    for query in ("select mlops.start_experiment('life')", "select mlops.conclude_experiment('life')",
                  "select mlops.pause_experiment('life')", "select mlops.assign('life', 'u1')",
                  "select mlops.set_experiment_traffic('life', coverage => 0.5)"):
        assert "conclude" in hint(conn, query), query
    history = conn.execute("select from_status, to_status from mlops.experiment_history h join mlops.experiments e"
                           " on e.id = h.experiment_id where e.name = 'life' order by h.id").fetchall()
    assert history == [(None, "draft"), ("draft", "running"), ("running", "paused"), ("paused", "running"),
                       ("running", "completed")]


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "state", "word"), [
    ({"variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.3}]}, "22023", "sum"),
    ({"variants": [{"name": "a", "weight": 0.5}]}, "22023", "variants"),
    ({"variants": [{"name": "a", "weight": 0.5}, {"name": "a", "weight": 0.5}]}, "22023", "unique"),
    ({"variants": [{"name": "a", "weight": "x"}, {"name": "b", "weight": 0.5}]}, "22023", "weight"),
    ({"variants": [{"name": "A b", "weight": 0.5}, {"name": "b", "weight": 0.5}]}, "22023", "variant name"),
    ({"seed": None}, "22004", "seed"),
    ({"coverage": 1.5}, "22023", "coverage"),
    ({"coverage": float("nan")}, "22023", "coverage"),
    ({"namespace_range": [0.7, 0.2]}, "22023", "namespace_range"),
    ({"primary_metric": "clicks"}, "22023", "primary_metric"),
    ({"unit": ""}, "22023", "unit"),
    ({"name": "Bad Name"}, "22023", "name"),
    ({"model": "no_such_model"}, "P0002", "no_such_model"),
])
def test_create_rejects_bad_input(conn: psycopg.Connection[Any], kwargs: dict[str, Any], state: str,
                                  word: str) -> None:
    params: dict[str, Any] = {"name": "bad_input", "variants": HALF, "seed": "", "coverage": 1.0,
                              "namespace_range": [0, 1], "primary_metric": "conversion", "unit": "user_id",
                              "model": None, **kwargs}
    params["variants"] = Jsonb(params["variants"])
    params["namespace_range"] = [float(x) for x in params["namespace_range"]]
    before = conn.execute("select count(*) from mlops.experiments").fetchone()
    with pytest.raises(psycopg.Error) as info:
        conn.execute("select mlops.create_experiment(%(name)s::text, model => %(model)s::text,"
                     " variants => %(variants)s::jsonb, seed => %(seed)s::text, coverage => %(coverage)s::float8,"
                     " namespace_range => %(namespace_range)s::float8[], primary_metric => %(primary_metric)s::text,"
                     " unit => %(unit)s::text)", params)
    assert info.value.sqlstate == state
    assert word in str(info.value.diag.message_primary)
    assert conn.execute("select count(*) from mlops.experiments").fetchone() == before


def test_percent_weights_accepted(conn: psycopg.Connection[Any]) -> None:
    create(conn, "percent", [{"name": "a", "weight": 30}, {"name": "b", "weight": 70}], start=False)
    assert conn.execute("select array_agg(weight order by position) from mlops.experiment_variants v"
                        " join mlops.experiments e on e.id = v.experiment_id where e.name = 'percent'"
                        ).fetchone() == ([0.3, 0.7],)


def test_assign_rejects_bad_input(conn: psycopg.Connection[Any]) -> None:
    create(conn, "badassign")
    assert sqlstate(conn, "select mlops.assign('badassign', '')") == "22023"
    assert sqlstate(conn, "select mlops.assign('badassign', null)") == "22023"
    assert sqlstate(conn, "select mlops.assign('nope', 'u')") == "42704"
    assert sqlstate(conn, "select * from mlops.assign_batch('badassign', array['a', null])") == "22023"
    assert sqlstate(conn, "select * from mlops.assign_batch('badassign', array['a', ''])") == "22023"
    assert sqlstate(conn, "select mlops.set_experiment_traffic('badassign', weights => '{0.2, 0.2}')") == "22023"
    assert sqlstate(conn, "select mlops.set_experiment_traffic('badassign', weights => '{1}')") == "22023"
    assert sqlstate(conn, "select mlops.gb_hash(null, 'a')") == "22004"
    # the numpy accelerator is callable on its own (mlops_writer): it names the bad argument too
    accel = "select mlops._gb_assign_py(%s::text, %s::text[], '{0,0.5,0.5,1}', null, 1, 0)"
    assert sqlstate(conn, accel, ("s", ["a", None, "b"])) == "22004"
    assert sqlstate(conn, accel, (None, ["a"])) == "22004"
    assert sqlstate(conn, accel, ("s", [["a", "b"], ["c", "d"]])) == "22023"
    assert sqlstate(conn, "select * from mlops.assign_batch('badassign', '{{a,b},{c,d}}')") == "22023"
    assert conn.execute(accel, ("s", [])).fetchone() == ([],)
    assert conn.execute("select count(*) from mlops.experiment_assignments a join mlops.experiments e"
                        " on e.id = a.experiment_id where e.name = 'badassign'").fetchone() == (0,)


# --- concurrency ----------------------------------------------------------------------------------

def test_first_exposure_recorded_once_under_concurrency(conn: psycopg.Connection[Any], dsn: str) -> None:
    create(conn, "race")
    ids = [f"c{i}" for i in range(300)]
    results: list[list[str | None]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(k: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                barrier.wait()
                if k % 2:
                    results.append(batch(c, "race", ids))
                else:
                    results.append([c.execute("select mlops.assign('race', %s::text)", (u,)).fetchone()[0]  # type: ignore[index]
                                    for u in ids])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(r == results[0] for r in results)
    rows = conn.execute("select count(*), count(distinct unit_id) from mlops.experiment_assignments a"
                        " join mlops.experiments e on e.id = a.experiment_id where e.name = 'race'").fetchone()
    assert rows == (300, 300)
