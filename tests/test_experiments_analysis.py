"""A/B experiments: statistics vs scipy/statsmodels, SRM on a planted 55/45 split, results from the
prediction log + feedback, routing and conclusion through the registry, Python client, BI views, roles."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pandas as pd
import pgmlops
import psycopg
import pytest
from psycopg.types.json import Jsonb
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest  # type: ignore[import-untyped]

AB = [{"name": "control", "alias": "champion", "weight": 0.5},
      {"name": "treatment", "alias": "challenger", "weight": 0.5}]


# --- statistics vs oracles ------------------------------------------------------------------------

@pytest.mark.parametrize(("xa", "na", "xb", "nb"), [(100, 1000, 130, 1000), (5, 40, 9, 38), (480, 5000, 500, 5100),
                                                    (1, 10000, 30, 10000), (300, 600, 290, 610)])
def test_two_proportion_ztest_vs_statsmodels(conn: psycopg.Connection[Any], xa: int, na: int, xb: int,
                                             nb: int) -> None:
    row = conn.execute("select z, p_value from mlops.two_proportion_ztest(%s, %s, %s, %s)", (xa, na, xb, nb)).fetchone()
    z, p = proportions_ztest([xb, xa], [nb, na])
    assert row is not None
    assert row[0] == pytest.approx(z, rel=1e-10) and row[1] == pytest.approx(p, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_welch_ttest_vs_scipy(conn: psycopg.Connection[Any], seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(1.0, 2.0, int(rng.integers(5, 300)))
    b = rng.normal(1.3, float(rng.uniform(0.5, 4)), int(rng.integers(5, 300)))
    row = conn.execute("select t, df, p_value from mlops.welch_ttest(%s, %s, %s, %s, %s, %s)",
                       (float(a.mean()), float(a.std(ddof=1)), len(a), float(b.mean()), float(b.std(ddof=1)),
                        len(b))).fetchone()
    oracle = stats.ttest_ind(b, a, equal_var=False)
    assert row is not None
    assert row[0] == pytest.approx(oracle.statistic, rel=1e-9)
    assert row[1] == pytest.approx(oracle.df, rel=1e-9)
    assert row[2] == pytest.approx(oracle.pvalue, rel=1e-8)


def test_srm_chi_square_and_normal_vs_scipy(conn: psycopg.Connection[Any]) -> None:
    cases: list[tuple[list[int], list[float]]] = [([5500, 4500], [0.5, 0.5]), ([1000, 2100, 2900], [0.2, 0.3, 0.5]),
                                                  ([50, 52], [1, 1])]
    for observed, weights in cases:
        row = conn.execute("select chi2, p_value from mlops.srm_test(%s::bigint[], %s::float8[])",
                           (observed, [float(w) for w in weights])).fetchone()
        total = sum(observed)
        oracle = stats.chisquare(observed, [total * w / sum(weights) for w in weights])
        assert row is not None
        assert row[0] == pytest.approx(oracle.statistic, rel=1e-12)
        assert row[1] == pytest.approx(oracle.pvalue, rel=1e-9)
    zs = [-8.5, -3.1, -1.0, 0.0, 0.3, 1.96, 6.0]
    got = conn.execute("select array_agg(mlops._norm_cdf(z) order by o)"
                       " from unnest(%s::float8[]) with ordinality u(z, o)", (zs,)).fetchone()
    assert got is not None and got[0] == pytest.approx(list(stats.norm.cdf(zs)), rel=1e-12)
    ctb = conn.execute("select mlops.chance_to_beat(0.10, 0.01, 0.12, 0.012)").fetchone()
    assert ctb is not None and ctb[0] == pytest.approx(stats.norm.cdf(0.02 / np.hypot(0.01, 0.012)), rel=1e-12)


def test_stats_reject_bad_input(conn: psycopg.Connection[Any]) -> None:
    for query in ("select mlops.two_proportion_ztest(5, 4, 1, 10)", "select mlops.two_proportion_ztest(1, 0, 1, 10)",
                  "select mlops.welch_ttest(1, 1, 1, 1, 1, 10)", "select mlops.welch_ttest('NaN', 1, 5, 1, 1, 10)",
                  "select mlops.srm_test('{1,2}', '{1}')", "select mlops.srm_test('{-1,2}', '{1,1}')"):
        with pytest.raises(psycopg.Error) as info:
            conn.execute(query)
        assert info.value.sqlstate == "22023" and "argument" in str(info.value.diag.message_primary)


def test_srm_detects_planted_55_45(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute("select p_value from mlops.srm_test('{5500,4500}', '{0.5,0.5}')").fetchone()
    assert row is not None and row[0] < 0.001
    fair = conn.execute("select p_value from mlops.srm_test('{5030,4970}', '{0.5,0.5}')").fetchone()
    assert fair is not None and fair[0] > 0.001


# --- end to end through the registry and the prediction log ---------------------------------------

def setup_model(conn: psycopg.Connection[Any], model: str) -> None:
    conn.execute("select mlops.register_model(%s::text, 'classification')", (model,))
    for i in (1, 2, 3):
        conn.execute("select mlops.create_model_version(%s::text, artifact => %s::bytea)", (model, bytes([i])))
    conn.execute("select mlops.set_alias(%s::text, 'champion', 1)", (model,))
    conn.execute("select mlops.set_alias(%s::text, 'challenger', 2)", (model,))


def log_traffic(conn: psycopg.Connection[Any], exp: str, model: str, units: list[str], variants: list[str | None],
                rates: dict[str, float], seed: int) -> dict[str, list[int]]:
    rng = random.Random(seed)
    preds, feedback = [], []
    outcomes: dict[str, list[int]] = {}
    for i, (unit, variant) in enumerate(zip(units, variants, strict=True)):
        if variant is None:
            continue
        version = conn.execute("select mlops.route(%s::text, %s::text)", (exp, unit)).fetchone()
        assert version is not None
        rid = f"{exp}-{i}"
        preds.append({"model": model, "request_id": rid, "version": version[0], "unit_id": unit,
                      "experiment": exp, "variant": variant, "score": 0.5})
        converted = int(rng.random() < rates[variant])
        outcomes.setdefault(variant, []).append(converted)
        feedback.append((rid, float(converted)))
    conn.execute("select mlops.log_predictions(%s::jsonb)", (Jsonb(preds),))
    conn.execute("select count(mlops.log_feedback(r, reward => x)) from unnest(%s::text[], %s::float8[]) u(r, x)",
                 ([f[0] for f in feedback], [f[1] for f in feedback]))
    return outcomes


def test_results_route_and_conclude_promote(client: pgmlops.Client, conn: psycopg.Connection[Any]) -> None:
    setup_model(conn, "churn")
    exp = client.experiments
    assert exp.create("churn_ab", AB, model="churn") > 0
    exp.start("churn_ab")
    units = [f"user{i}" for i in range(3000)]
    assigned = exp.assign_batch("churn_ab", units)
    assert list(assigned.columns) == ["unit_id", "variant"] and len(assigned) == 3000
    variants = list(assigned["variant"])
    for unit, variant in list(zip(units, variants, strict=True))[:20]:
        assert exp.assign("churn_ab", unit) == variant
        assert exp.route("churn", unit) == (1 if variant == "control" else 2)
        assert exp.route("churn_ab", unit) == (1 if variant == "control" else 2)
    outcomes = log_traffic(conn, "churn_ab", "churn", units, variants, {"control": 0.10, "treatment": 0.16}, 7)
    res = exp.results("churn_ab")
    assert isinstance(res, pd.DataFrame) and list(res["variant"]) == ["control", "treatment"]
    c, t = outcomes["control"], outcomes["treatment"]
    row: dict[Any, dict[Any, Any]] = {r["variant"]: r for r in res.to_dict("records")}
    assert row["control"]["units"] == len(c) and row["treatment"]["exposures"] == len(t)
    assert row["treatment"]["metric_mean"] == pytest.approx(np.mean(t), rel=1e-12)
    _, p = proportions_ztest([sum(t), sum(c)], [len(t), len(c)])
    assert row["treatment"]["p_value"] == pytest.approx(p, rel=1e-9)
    assert row["treatment"]["lift"] == pytest.approx(np.mean(t) / np.mean(c) - 1, rel=1e-9)
    assert row["treatment"]["lift_ci_low"] < row["treatment"]["lift"] < row["treatment"]["lift_ci_high"]
    assert not row["treatment"]["srm_warning"] and row["control"]["srm_p_value"] > 0.001
    assert row["treatment"]["chance_to_beat_control"] > 0.99
    outcome = exp.conclude("churn_ab")
    assert outcome["winner"] == "treatment" and outcome["promoted_version"] == 2 and outcome["automatic"]
    assert conn.execute("select v.version from mlops.model_aliases a join mlops.model_versions v on v.id = a.version_id"
                        " join mlops.models m on m.id = a.model_id where m.name = 'churn' and a.alias = 'champion'"
                        ).fetchone() == (2,)
    info = exp.get("churn_ab")
    assert info["status"] == "completed" and info["winner"] == "treatment" and info["units"] == 3000
    assert exp.route("churn", "someone_new") == 2  # no running experiment: the champion


def test_continuous_metric_uses_welch(client: pgmlops.Client, conn: psycopg.Connection[Any]) -> None:
    setup_model(conn, "ltv")
    client.experiments.create("ltv_ab", AB, model="ltv", primary_metric="reward")
    client.experiments.start("ltv_ab")
    units = [f"u{i}" for i in range(800)]
    variants = list(client.experiments.assign_batch("ltv_ab", units)["variant"])
    rng = np.random.default_rng(3)
    preds, rewards = [], []
    values: dict[str, list[float]] = {"control": [], "treatment": []}
    for i, (u, v) in enumerate(zip(units, variants, strict=True)):
        x = float(rng.normal(10 if v == "control" else 10.8, 3))
        values[v].append(x)
        preds.append({"model": "ltv", "request_id": f"ltv{i}", "version": 1 if v == "control" else 2, "unit_id": u,
                      "experiment": "ltv_ab", "variant": v})
        rewards.append(x)
    conn.execute("select mlops.log_predictions(%s::jsonb)", (Jsonb(preds),))
    conn.execute("select count(mlops.log_feedback(r, reward => x)) from unnest(%s::text[], %s::float8[]) u(r, x)",
                 ([p["request_id"] for p in preds], rewards))
    row = next(r for r in client.experiments.results("ltv_ab").to_dict("records") if r["variant"] == "treatment")
    oracle = stats.ttest_ind(values["treatment"], values["control"], equal_var=False)
    assert row["p_value"] == pytest.approx(oracle.pvalue, rel=1e-8)
    assert row["metric_sd"] == pytest.approx(np.std(values["treatment"], ddof=1), rel=1e-9)


def test_srm_blocks_automatic_promotion(conn: psycopg.Connection[Any]) -> None:
    setup_model(conn, "srm_model")
    conn.execute("select mlops.create_experiment('srm_ab', model => 'srm_model', variants => %s::jsonb)", (Jsonb(AB),))
    conn.execute("select mlops.start_experiment('srm_ab')")
    # planted broken split: 1100 / 900 units (55/45) with a strong treatment effect
    conn.execute("""insert into mlops.experiment_assignments (experiment_id, unit_id, variant)
                    select e.id, 'p' || g, case when g <= 1100 then 0 else 1 end
                      from mlops.experiments e, generate_series(1, 2000) g where e.name = 'srm_ab'""")
    preds = [{"model": "srm_model", "request_id": f"srm{g}", "version": 1 if g <= 1100 else 2, "unit_id": f"p{g}",
              "experiment": "srm_ab", "variant": "control" if g <= 1100 else "treatment"} for g in range(1, 2001)]
    conn.execute("select mlops.log_predictions(%s::jsonb)", (Jsonb(preds),))
    conn.execute("select count(mlops.log_feedback('srm' || g, reward => case when g > 1100 and g % 4 = 0 then 1"
                 " when g % 10 = 0 then 1 else 0 end)) from generate_series(1, 2000) g")
    srm = conn.execute("select p_value from mlops.srm_test('{1100,900}', '{0.5,0.5}')").fetchone()
    assert srm is not None and srm[0] == pytest.approx(stats.chisquare([1100, 900]).pvalue, rel=1e-9)
    rows = conn.execute("select variant, srm_warning, srm_p_value, p_value from mlops.experiment_results('srm_ab')"
                        " order by variant").fetchall()
    assert all(r[1] for r in rows) and rows[0][2] < 0.001 and rows[1][3] < 0.05
    result = conn.execute("select mlops.conclude_experiment('srm_ab')").fetchone()
    assert result is not None
    assert result[0]["winner"] == "treatment" and result[0]["promoted_version"] is None
    assert "sample ratio mismatch" in result[0]["not_promoted_because"]
    assert conn.execute("select v.version from mlops.model_aliases a join mlops.model_versions v on v.id = a.version_id"
                        " join mlops.models m on m.id = a.model_id where m.name = 'srm_model'"
                        " and a.alias = 'champion'").fetchone() == (1,)


def test_start_refuses_failed_version_and_unknown_alias(conn: psycopg.Connection[Any]) -> None:
    setup_model(conn, "gate")
    with pytest.raises(psycopg.Error) as info:
        conn.execute("select mlops.create_experiment('gate_ab', model => 'gate', variants => %s::jsonb)",
                     (Jsonb([AB[0], {"name": "treatment", "alias": "nope", "weight": 0.5}]),))
    assert info.value.sqlstate == "P0002" and "nope" in str(info.value.diag.message_primary)
    conn.execute("select mlops.create_experiment('gate_ab', model => 'gate', variants => %s::jsonb)",
                 (Jsonb([AB[0], {"name": "treatment", "version": 3, "weight": 0.5}]),))
    conn.execute("select mlops.set_version_status('gate', 3, 'failed')")
    with pytest.raises(psycopg.Error) as info:
        conn.execute("select mlops.start_experiment('gate_ab')")
    assert info.value.sqlstate == "55000" and "failed" in str(info.value.diag.message_primary)
    assert "mlops.set_alias" in str(info.value.diag.message_hint)
    assert conn.execute("select status from mlops.experiments where name = 'gate_ab'").fetchone() == ("draft",)
    with pytest.raises(psycopg.Error) as info:
        conn.execute("select mlops.conclude_experiment('gate_ab')")
    assert info.value.sqlstate == "55000" and "mlops.start_experiment" in str(info.value.diag.message_hint)
    # a model with no champion and no running experiment: nothing to route to, and what to do about it
    conn.execute("select mlops.register_model('unrouted', 'classification')")
    with pytest.raises(psycopg.Error) as info:
        conn.execute("select mlops.route('unrouted', 'u1')")
    assert info.value.sqlstate == "P0002" and "champion" in str(info.value.diag.message_hint)


def test_routed_prediction_is_logged_with_variant(client: pgmlops.Client, conn: psycopg.Connection[Any]) -> None:
    conn.execute("select mlops.register_model('lin', 'regression')")
    for coef, icpt in (([1, 2], 0), ([10, 20], 1)):
        conn.execute("select mlops.create_model_version('lin', artifact => %s::bytea, flavor => 'linear')",
                     (json.dumps({"coefficients": coef, "intercept": icpt}).encode(),))
    conn.execute("select mlops.set_alias('lin', 'champion', 1)")
    client.experiments.create("lin_ab", [{"name": "control", "version": 1, "weight": 0.5},
                                         {"name": "treatment", "version": 2, "weight": 0.5}], model="lin")
    client.experiments.start("lin_ab")
    got = [client.experiments.predict("lin", f"u{i}", [1.0, 1.0], request_id=f"lin-{i}") for i in range(40)]
    for i, g in enumerate(got):
        assert g["variant"] == client.experiments.assign("lin_ab", f"u{i}")
        assert (g["version"], g["score"]) == ((1, 3.0) if g["variant"] == "control" else (2, 31.0))
    logged = conn.execute("select request_id, model_version, experiment, variant, score from mlops.predictions"
                          " where model = 'lin' order by request_id").fetchall()
    assert sorted(logged) == sorted((g["logged_request_id"], g["version"], "lin_ab", g["variant"], g["score"])
                                    for g in got)
    assert {g["variant"] for g in got} == {"control", "treatment"}
    with pytest.raises(psycopg.Error) as info:
        client.experiments.predict("lin", "", [1.0, 1.0])
    assert info.value.sqlstate == "22023"


# --- BI views and roles ---------------------------------------------------------------------------

def test_bi_views_simple_types_time_and_comments(conn: psycopg.Connection[Any]) -> None:
    for view in ("experiments_bi", "experiment_assignments_daily", "experiment_results_bi"):
        cols = conn.execute("""
            select a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum)
              from pg_attribute a where a.attrelid = ('mlops.' || %s)::regclass and a.attnum > 0""", (view,)).fetchall()
        assert cols and ("time", "timestamp with time zone") in [(c[0], c[1]) for c in cols]
        assert not [c for c in cols if c[1] in ("jsonb", "json", "vector") or c[1].endswith("[]")]
        assert all(c[2] for c in cols), [c[0] for c in cols if not c[2]]
        assert conn.execute("select obj_description(('mlops.' || %s)::regclass)", (view,)).fetchone() != (None,)
        conn.execute(f"select * from mlops.{view}").fetchall()


def test_roles(conn: psycopg.Connection[Any]) -> None:
    conn.execute("select mlops.create_experiment('roles_ab', variants => %s::jsonb)",
                 (Jsonb([{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]),))
    conn.execute("select mlops.start_experiment('roles_ab')")
    with conn.transaction():
        conn.execute("set local role mlops_writer")
        assert conn.execute("select mlops.assign('roles_ab', 'w1')").fetchone() != (None,)
        assert conn.execute("select count(*) from mlops.assign_batch('roles_ab', '{w2,w3}')").fetchone() == (2,)
    for role, query in (("mlops_reader", "select mlops.assign('roles_ab', 'r1')"),
                        ("mlops_writer", "select mlops.pause_experiment('roles_ab')"),
                        ("public_nobody", "select mlops.gb_hash('a', 'b')")):
        if role == "public_nobody":
            conn.execute("drop role if exists public_nobody")
            conn.execute("create role public_nobody")
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute(f"set local role {role}")
            conn.execute(query)
    with conn.transaction():
        conn.execute("set local role mlops_reader")
        assert conn.execute("select count(*) from mlops.experiment_results('roles_ab')").fetchone() == (2,)
    with conn.transaction():
        conn.execute("set local role mlops_admin")
        conn.execute("select mlops.pause_experiment('roles_ab')")
