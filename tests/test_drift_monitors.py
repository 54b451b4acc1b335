"""Reference profiles, monitors, runs, alerts, prediction / concept / embedding drift, the BI view,
bad input, run_due_monitors and roles."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pgmlops
import psycopg
import pytest
from pgmlops.report import plotly_js
from psycopg.types.json import Jsonb
from scipy import stats

Conn = psycopg.Connection[Any]


def load(conn: Conn, table: str, df: pd.DataFrame, vector_col: str | None = None) -> None:
    """Create public.<table> from a DataFrame (x* float8, c* text, e vector) with COPY."""
    cols = []
    for c in df.columns:
        kind = "vector" if c == vector_col else ("float8" if pd.api.types.is_numeric_dtype(df[c]) else "text")
        cols.append(f"{c} {kind}")
    conn.execute(f"drop table if exists public.{table}")
    conn.execute(f"create table public.{table} ({', '.join(cols)})")
    with conn.cursor().copy(f"copy public.{table} from stdin") as cp:
        for row in df.itertuples(index=False):
            cp.write_row([None if (isinstance(v, float) and np.isnan(v)) else
                          ("[" + ",".join(f"{x:.6f}" for x in v) + "]" if isinstance(v, np.ndarray) else v)
                          for v in row])


def frame(rng: np.random.Generator, n: int, shift: float = 0.0, cat_shift: float = 0.0) -> pd.DataFrame:
    p = np.array([0.5, 0.3, 0.2]) * (1 - cat_shift) + np.array([0.1, 0.2, 0.7]) * cat_shift
    return pd.DataFrame({"x1": rng.normal(shift, 1, n), "x2": rng.exponential(1 + shift, n),
                         "x3": rng.uniform(0, 1, n), "c1": rng.choice(["a", "b", "c"], n, p=p)})


@pytest.fixture(scope="module")
def db(dsn: str) -> str:
    rng = np.random.default_rng(42)
    with psycopg.connect(dsn, autocommit=True) as conn:
        load(conn, "ref_small", frame(rng, 800))
        load(conn, "cur_small_same", frame(rng, 600))
        load(conn, "cur_small_shift", frame(rng, 600, shift=0.5, cat_shift=0.5))
        load(conn, "ref_big", frame(rng, 5000))
        load(conn, "cur_big_same", frame(rng, 4000))
        load(conn, "cur_big_shift", frame(rng, 4000, shift=0.5, cat_shift=0.5))
    return dsn


def profile(conn: Conn, name: str, table: str, **kw: Any) -> int:
    args = ", ".join(f"{k} => %s" for k in kw)
    row = conn.execute(f"select mlops.create_reference_profile(name => %s, query => %s{', ' + args if args else ''})",
                       (name, f"select * from public.{table}", *kw.values())).fetchone()
    assert row is not None
    return int(row[0])


def monitor(conn: Conn, name: str, prof: str, table: str, **kw: Any) -> None:
    args = ", ".join(f"{k} => %s" for k in kw)
    conn.execute(f"select mlops.create_drift_monitor(name => %s, profile => %s, query => %s"
                 f"{', ' + args if args else ''})", (name, prof, f"select * from public.{table}", *kw.values()))


def run(conn: Conn, name: str) -> dict[str, tuple[Any, ...]]:
    rows = conn.execute("select column_name, method, statistic, p_value, threshold, drifted, details "
                        "from mlops.run_drift_monitor(%s)", (name,)).fetchall()
    return {f"{r[0]}:{r[1]}": r for r in rows}


def test_profile_matches_numpy(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        profile(conn, "p_small", "ref_small")
        cols = conn.execute("select columns, row_count from mlops.drift_profiles where name = 'p_small'").fetchone()
        assert cols is not None
        data = conn.execute("select x1, c1 from public.ref_small").fetchall()
    prof, rows = cols
    x1 = np.array([r[0] for r in data])
    assert rows == 800 and prof["x1"]["count"] == 800 and prof["x1"]["nulls"] == 0
    assert abs(prof["x1"]["mean"] - x1.mean()) < 1e-9 and abs(prof["x1"]["std"] - x1.std()) < 1e-9
    q = np.array(prof["x1"]["quantiles"])
    assert len(q) == 1001 and np.allclose(q, np.quantile(x1, np.linspace(0, 1, 1001)), atol=1e-9)
    assert sorted(prof["x1"]["values"]) == sorted(x1.tolist())  # <= sample_size rows: all values kept (exact KS)
    assert sum(prof["x1"]["hist"]) == 800
    cats = pd.Series([r[1] for r in data]).value_counts().to_dict()
    assert prof["c1"]["categories"] == cats and prof["c1"]["type"] == "categorical"


def test_small_reference_uses_exact_tests_and_matches_scipy(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        monitor(conn, "m_small_shift", "p_small", "cur_small_shift")
        res = run(conn, "m_small_shift")
        ref = np.array([r[0] for r in conn.execute("select x1 from public.ref_small").fetchall()])
        cur = np.array([r[0] for r in conn.execute("select x1 from public.cur_small_shift").fetchall()])
    assert set(res) == {"x1:ks", "x2:ks", "x3:ks", "c1:chi2"}
    ks = stats.ks_2samp(ref, cur)
    assert abs(res["x1:ks"][2] - ks.statistic) < 1e-9 and abs(res["x1:ks"][3] - ks.pvalue) < 1e-9
    assert res["x1:ks"][5] and res["x2:ks"][5] and res["c1:chi2"][5]  # planted shifts detected
    assert not res["x3:ks"][5]  # x3 was not shifted


def test_large_reference_uses_wasserstein_and_js(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        profile(conn, "p_big", "ref_big")
        monitor(conn, "m_big_shift", "p_big", "cur_big_shift")
        monitor(conn, "m_big_same", "p_big", "cur_big_same")
        shifted, same = run(conn, "m_big_shift"), run(conn, "m_big_same")
        ref = np.array([r[0] for r in conn.execute("select x1 from public.ref_big").fetchall()])
        cur = np.array([r[0] for r in conn.execute("select x1 from public.cur_big_shift").fetchall()])
        run_row = conn.execute("select share_drifted, dataset_drift, current_rows from mlops.drift_runs r "
                               "join mlops.drift_monitors m on m.id = r.monitor_id where m.name = 'm_big_shift'"
                               ).fetchone()
    assert set(shifted) == {"x1:wasserstein", "x2:wasserstein", "x3:wasserstein", "c1:js"}
    normed = stats.wasserstein_distance(ref, cur) / ref.std()
    assert abs(shifted["x1:wasserstein"][2] - normed) < 0.01 * normed  # quantile-grid approximation
    assert shifted["x1:wasserstein"][5] and shifted["c1:js"][5] and not shifted["x3:wasserstein"][5]
    assert not any(r[5] for r in same.values())
    assert run_row == (0.75, True, 4000)
    details = shifted["x1:wasserstein"][6]
    assert len(details["reference_hist"]) == len(details["current_hist"]) == len(details["edges"]) + 1
    assert sum(details["current_hist"]) == 4000 and details["psi"] > 0.1


def test_false_alarm_rate_on_unshifted_data(db: str) -> None:
    """20 unshifted current samples x 4 columns at p < 0.05: about 5% of tests may fire."""
    rng = np.random.default_rng(9)
    fired = total = 0
    with psycopg.connect(db, autocommit=True) as conn:
        for i in range(20):
            load(conn, "cur_null", frame(rng, 300))
            if i == 0:
                monitor(conn, "m_null", "p_small", "cur_null")
            res = run(conn, "m_null")
            fired += sum(bool(r[5]) for r in res.values())
            total += len(res)
    assert total == 80 and fired / total <= 0.125


def test_alert_notify_and_resolve(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as listener, psycopg.connect(db, autocommit=True) as conn:
        listener.execute("listen mlops_drift")
        load(conn, "cur_alert", frame(np.random.default_rng(3), 2000, shift=1.0, cat_shift=0.8))
        monitor(conn, "m_alert", "p_big", "cur_alert", about_model="churn")
        run(conn, "m_alert")
        alert = conn.execute("select severity, details from mlops.alerts where source = 'drift' "
                             "and subject = 'm_alert' and resolved_at is null").fetchone()
        assert alert is not None and alert[1]["model"] == "churn" and alert[1]["share_drifted"] >= 0.5
        notes = [json.loads(n.payload) for n in listener.notifies(timeout=1.0, stop_after=3)]
        assert any(n.get("monitor") == "m_alert" and n["dataset_drift"] for n in notes)
        load(conn, "cur_alert", frame(np.random.default_rng(4), 2000))
        run(conn, "m_alert")
        assert conn.execute("select count(*) from mlops.alerts where subject = 'm_alert' and resolved_at is null"
                            ).fetchone() == (0,)


def test_method_overrides_thresholds_and_psi_ks_approx(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        monitor(conn, "m_override", "p_big", "cur_big_shift",
                columns=Jsonb({"x1": "ks", "x2": "psi", "c1": "chi2", "x3": "wasserstein"}),
                thresholds=Jsonb({"wasserstein": 0.9}))
        res = run(conn, "m_override")
        ref = np.array([r[0] for r in conn.execute("select x1 from public.ref_big").fetchall()])
        cur = np.array([r[0] for r in conn.execute("select x1 from public.cur_big_shift").fetchall()])
    assert res["x1:ks"][6]["ks_method"] == "quantile_approx"
    assert abs(res["x1:ks"][2] - stats.ks_2samp(ref, cur).statistic) <= 0.002 + 1e-9  # documented bound
    assert res["x2:psi"][5] and res["c1:chi2"][5] and res["x3:wasserstein"][4] == 0.9


def test_unseen_categories_nan_nulls_constant(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("create table public.odd_ref as select i::float8 as k, 'a'::text as c, "
                     "case when i % 10 = 0 then null else i::float8 end as n from generate_series(1, 300) i")
        conn.execute("create table public.odd_cur as select 5::float8 as k, "
                     "(array['a','zz','yy'])[i % 3 + 1] as c, "
                     "case when i % 4 = 0 then 'NaN'::float8 when i % 4 = 1 then 'Infinity' else i end as n "
                     "from generate_series(1, 300) i")
        profile(conn, "p_odd", "odd_ref")
        monitor(conn, "m_odd", "p_odd", "odd_cur")
        res = run(conn, "m_odd")
        conn.execute("update public.odd_cur set n = null")
        res_null = run(conn, "m_odd")
    assert res["c:z"][6]["unseen"] == 200 and res["c:z"][5]  # unseen categories counted, not a crash
    assert res["k:ks"][5]  # constant current vs spread reference
    assert res["n:ks"][6]["current_non_finite"] == 150 and abs(res["n:ks"][6]["reference_null_rate"] - 0.1) < 1e-12
    assert res_null["n:missing"][5] and res_null["n:missing"][6]["current_null_rate"] == 1.0


@pytest.mark.parametrize(("call", "sqlstate", "needle"), [
    ("select mlops.create_reference_profile(name => 'e1', query => 'select x1 from public.ref_small where false')",
     "22023", "reference set is empty"),
    ("select mlops.create_reference_profile(name => 'e2', query => 'select null::float8 as z from public.ref_small')",
     "22023", "no usable value"),
    ("select mlops.create_reference_profile(name => 'e3', query => 'select * from public.ref_small', "
     "columns => '{nope}')", "42703", "column 'nope' is not in the source"),
    ("select mlops.create_reference_profile(name => 'Bad', query => 'select 1')", "22023", "invalid name"),
    ("select mlops.create_reference_profile(name => 'e4')", "22023", "exactly one of query, model or feature_group"),
    ("select mlops.create_reference_profile(name => 'e5', query => 'select now() as t', columns => '{t}')", "22023",
     "has type"),
    ("select mlops.create_reference_profile(name => 'e5', query => 'select now() as t')", "22023",
     "no numeric, text, boolean or vector column"),
    ("select mlops.create_reference_profile(name => 'p_small', query => 'select x1 from public.ref_small')",
     "42710", "already exists"),
    ("select mlops.create_drift_monitor(name => 'e6', profile => 'nope', query => 'select 1')", "42704",
     "does not exist"),
    ("select mlops.create_drift_monitor(name => 'e7', profile => 'p_small', query => 'select * from public.ref_small', "
     "columns => '{\"x1\": \"js\"}')", "22023", "method 'js' is not valid for numeric"),
    ("select mlops.create_drift_monitor(name => 'e8', profile => 'p_small', query => 'select * from public.ref_small', "
     "thresholds => '{\"kss\": 0.1}')", "22023", "unknown method"),
    ("select mlops.create_drift_monitor(name => 'e9', profile => 'p_small', "
     "query => 'select x1 from public.ref_small')",
     "42703", "is not in the source"),
    ("select mlops.create_drift_monitor(name => 'e10', profile => 'p_small', "
     "query => 'select c1 as x1, x2, x3, c1 from public.ref_small')", "42804", "is categorical in the current source"),
    ("select * from mlops.run_drift_monitor('nope')", "42704", "does not exist"),
])
def test_bad_input_is_rejected_and_writes_nothing(db: str, call: str, sqlstate: str, needle: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        before = conn.execute("select (select count(*) from mlops.drift_profiles), (select count(*) from "
                              "mlops.drift_monitors), (select count(*) from mlops.drift_runs)").fetchone()
        with pytest.raises(psycopg.Error) as exc:
            conn.execute(call)
        assert exc.value.sqlstate == sqlstate and needle in str(exc.value)
        after = conn.execute("select (select count(*) from mlops.drift_profiles), (select count(*) from "
                             "mlops.drift_monitors), (select count(*) from mlops.drift_runs)").fetchone()
        assert before == after


def test_empty_current_is_an_error(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        monitor(conn, "m_empty", "p_small", "cur_small_same")
        conn.execute("create table public.cur_empty as select * from public.cur_small_same where false")
        monitor(conn, "m_empty", "p_small", "cur_empty", replace=True)
        runs = conn.execute("select count(*) from mlops.drift_runs").fetchone()
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="current data of monitor 'm_empty' is empty"):
            conn.execute("select * from mlops.run_drift_monitor('m_empty')")
        assert conn.execute("select count(*) from mlops.drift_runs").fetchone() == runs


def embeddings(rng: np.random.Generator, n: int, topic: int) -> np.ndarray:
    centers = np.random.default_rng(0).normal(size=(4, 32))
    v = centers[rng.integers(0, 2, n) + 2 * topic] + rng.normal(scale=0.8, size=(n, 32))
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True))


def test_embedding_drift_planted_topic_shift(db: str) -> None:
    rng = np.random.default_rng(5)
    with psycopg.connect(db, autocommit=True) as conn:
        load(conn, "emb_ref", pd.DataFrame({"e": list(embeddings(rng, 1500, 0))}), vector_col="e")
        load(conn, "emb_same", pd.DataFrame({"e": list(embeddings(rng, 1000, 0))}), vector_col="e")
        load(conn, "emb_shift", pd.DataFrame({"e": list(embeddings(rng, 1000, 1))}), vector_col="e")
        profile(conn, "p_emb", "emb_ref", vector_sample=300)
        prof = conn.execute("select columns -> 'e' from mlops.drift_profiles where name = 'p_emb'").fetchone()
        monitor(conn, "m_emb_same", "p_emb", "emb_same")
        monitor(conn, "m_emb_shift", "p_emb", "emb_shift")
        same, shifted = run(conn, "m_emb_same"), run(conn, "m_emb_shift")
        ref = np.array([json.loads(r[0]) for r in conn.execute("select e::text from public.emb_ref").fetchall()])
    assert prof is not None and prof[0]["dim"] == 32
    assert np.allclose(prof[0]["centroid"], ref.mean(axis=0), atol=1e-5)
    assert np.allclose(prof[0]["variance"], ref.var(axis=0), atol=1e-4)
    assert abs(prof[0]["magnitude"] - 1.0) < 1e-5
    for method in ("centroid_cosine", "dimension_share", "nn_share", "mmd"):
        assert shifted[f"e:{method}"][5], method
    for method in ("centroid_cosine", "dimension_share", "mmd"):
        assert not same[f"e:{method}"][5], (method, same[f"e:{method}"][2:5])
    assert same["e:nn_share"][2] < 0.2


def test_vector_dimension_mismatch(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("create table public.emb_bad as select '[1,2,3]'::vector as e")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="dimension 3 in the current data but 32"):
            monitor(conn, "m_emb_bad", "p_emb", "emb_bad")
            conn.execute("select * from mlops.run_drift_monitor('m_emb_bad')")
        conn.execute("create table public.emb_mixed as select '[1,2,3]'::vector as e union all select '[1,2]'")
        with pytest.raises(psycopg.errors.DataException, match=r"vector columns: e.*dimensions"):
            profile(conn, "p_mixed", "emb_mixed")


def test_prediction_and_concept_drift_from_the_log(db: str) -> None:
    rng = np.random.default_rng(11)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("select mlops.register_model('churn', 'classification')")
        conn.execute("select mlops.create_model_version('churn', artifact_uri => 's3://m/1', "
                     "sha256 => repeat('a', 64))")

        def log(n: int, days_ago: int, shift: float, accuracy: float) -> None:
            preds = [{"model": "churn", "version": 1, "request_id": f"r{days_ago}_{i}",
                      "score": float(rng.beta(2 + shift * 4, 5)),
                      "label": "yes" if rng.random() < 0.3 + shift else "no",
                      "created_at": (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=days_ago, minutes=i % 600)
                                     ).isoformat()} for i in range(n)]
            conn.execute("select mlops.log_predictions(%s::jsonb)", (Jsonb(preds),))
            conn.execute("select mlops.log_feedback(p->>'request_id', correct => random() < %s) "
                         "from jsonb_array_elements(%s::jsonb) p", (accuracy, Jsonb(preds)))

        log(600, 10, 0.0, 0.9)
        log(600, 0, 0.4, 0.6)
        conn.execute("select mlops.create_reference_profile(name => 'p_churn', model => 'churn', "
                     "window_start => now() - interval '11 days', window_end => now() - interval '9 days')")
        conn.execute("select mlops.create_drift_monitor(name => 'm_churn', profile => 'p_churn', model => 'churn', "
                     "time_window => interval '1 day')")
        res = run(conn, "m_churn")
        alert = conn.execute("select details from mlops.alerts where subject = 'm_churn' and resolved_at is null"
                             ).fetchone()
    assert {"score:ks", "label:z", "correct:z"} <= set(res)
    assert res["score:ks"][5] and res["label:z"][5]  # prediction drift
    assert res["correct:z"][5] and res["correct:z"][6]["current_count"] == 600  # concept drift (accuracy drop)
    assert alert is not None and alert[0]["model"] == "churn"


def test_run_due_monitors(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("update mlops.drift_monitors set schedule = null")
        monitor(conn, "m_due", "p_small", "cur_small_same", schedule="1 hour")
        first = conn.execute("select monitor, run_id is not null, error from mlops.run_due_monitors()").fetchall()
        second = conn.execute("select * from mlops.run_due_monitors()").fetchall()
    assert first == [("m_due", True, None)] and second == []


def test_drift_summary_view_is_bi_friendly(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        cols = conn.execute("""
            select a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum)
              from pg_attribute a where a.attrelid = 'mlops.drift_summary'::regclass and a.attnum > 0""").fetchall()
        assert conn.execute("select obj_description('mlops.drift_summary'::regclass)").fetchone() != (None,)
        n = conn.execute("select count(*) from mlops.drift_summary where monitor = 'm_big_shift'").fetchone()
    types = {c[1] for c in cols}
    assert ("time", "timestamp with time zone", cols[0][2]) == cols[0]
    assert all(c[2] for c in cols), "every column needs a comment"
    assert not types & {"jsonb", "vector"} and not any(t.endswith("[]") for t in types)
    assert n is not None and n[0] == 4


def test_roles(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("grant select on public.cur_small_same, public.ref_small to mlops_admin")
        conn.execute("set role mlops_admin")
        conn.execute("select mlops.create_reference_profile(name => 'p_admin', "
                     "query => 'select * from public.ref_small')")
        monitor(conn, "m_admin", "p_admin", "cur_small_same")
        assert len(run(conn, "m_admin")) == 4
        conn.execute("set role mlops_reader")
        assert conn.execute("select count(*) > 0 from mlops.drift_summary").fetchone() == (True,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from mlops.run_drift_monitor('m_admin')")
        conn.execute("reset role")
        conn.execute("create role drift_nobody")
        conn.execute("set role drift_nobody")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select mlops.ks_2samp('{1}', '{2}')")
        conn.execute("reset role")


def test_client_and_report(db: str, tmp_path: Any) -> None:
    with pgmlops.connect(db) as client:
        assert client.drift.profile("p_client", query="select * from public.ref_big", columns=["x1", "c1"]) > 0
        client.drift.monitor("m_client", "p_client", query="select * from public.cur_big_shift",
                             columns={"x1": "wasserstein", "c1": "js"})
        df = client.drift.run("m_client")
        assert list(df["method"]) == ["js", "wasserstein"] and df["drifted"].all()
        assert abs(client.drift.ks_2samp([1, 2, 3, 4], [3, 4, 5, 6, 7]).p_value
                   - stats.ks_2samp([1, 2, 3, 4], [3, 4, 5, 6, 7]).pvalue) < 1e-9
        html = client.drift.report("m_client", tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text() == html
    assert html.count(plotly_js()) == 1  # plotly.js inlined exactly once
    assert html.count('<div class="figure">') == 2 and "Drift report: m_client" in html
    # Outside the inlined bundle (whose code only mentions map-tile URLs for map traces we never
    # draw) nothing refers to another host, and no tag loads anything.
    rest = html.replace(plotly_js(), "").lower()
    assert "http:" not in rest and "https:" not in rest and "//cdn" not in rest
    assert "<script src" not in rest and "<link" not in rest and "@import" not in rest


def test_cli_report_and_run(db: str, tmp_path: Any) -> None:
    out = tmp_path / "cli.html"
    proc = subprocess.run([sys.executable, "-m", "pgmlops.cli", "report", "drift", "m_client", "--html", str(out),
                           "--dsn", db], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    proc = subprocess.run([sys.executable, "-m", "pgmlops.cli", "drift", "run", "m_client", "--json", "--dsn", db],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and {r["method"] for r in json.loads(proc.stdout)} == {"js", "wasserstein"}
    proc = subprocess.run([sys.executable, "-m", "pgmlops.cli", "report", "drift", "nope", "--html", str(out),
                           "--dsn", db], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "nope" in proc.stderr
