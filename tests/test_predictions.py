"""Prediction logging, feedback, partitions/retention and monitoring against a real PostgreSQL."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pgmlops
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

Conn = psycopg.Connection[Any]


def register(conn: Conn, model: str, versions: int = 1, signature: dict[str, Any] | None = None) -> None:
    conn.execute("insert into mlops.models (name, task) values (%s::text, 'classification') on conflict do nothing",
                 (model,))
    for v in range(1, versions + 1):
        conn.execute(
            "insert into mlops.model_versions (model_id, version, flavor, artifact, artifact_sha256, signature)"
            " select id, %s::integer, 'custom', '\\x00'::bytea, repeat('a', 64), %s::jsonb from mlops.models"
            " where name = %s::text on conflict do nothing", (v, Jsonb(signature or {}), model))


def count(conn: Conn, where: str = "true", args: tuple[Any, ...] = ()) -> int:
    row = conn.execute(f"select count(*) from mlops.predictions where {where}", args).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module", autouse=True)
def models(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        register(c, "churn", versions=2, signature={"feature_vector_dim": 3})
        register(c, "oracle", versions=2)
        register(c, "degr")
        register(c, "healthy")


def test_log_is_idempotent_on_request_id(client: pgmlops.Client, conn: Conn) -> None:
    first = client.predictions.log("churn", request_id="idem-1", label="yes", latency_ms=2.5,
                                   features={"age": 3}, feature_vector=[1, 2, 3])
    again = client.predictions.log("churn", request_id="idem-1", label="no", latency_ms=9.0)
    assert first == again
    assert conn.execute("select label, model_version, latency_ms from mlops.predictions"
                        " where request_id = 'idem-1'").fetchall() == [("yes", 2, 2.5)]
    assert client.predictions.log("churn", request_id="idem-v1", version=1) != first
    assert conn.execute("select model_version from mlops.predictions where request_id = 'idem-v1'").fetchone() == (1,)
    n = conn.execute("""select mlops.log_predictions('[{"model": "churn", "request_id": "idem-1"},
                          {"model": "churn", "request_id": "idem-b"}, {"model": "churn", "request_id": "idem-b"}]')"""
                     ).fetchone()
    assert n == (1,)
    assert count(conn, "request_id in ('idem-1', 'idem-b')") == 2


def test_concurrent_duplicate_request_ids(dsn: str, conn: Conn) -> None:
    ids = [f"conc-{i}" for i in range(60)]
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                mine = ids[:]
                random.Random(k).shuffle(mine)
                barrier.wait()
                if k % 2:
                    for rid in mine:
                        c.execute("select mlops.log_prediction(model => 'churn', request_id => %s::text,"
                                  " latency_ms => %s::float8)", (rid, float(k)))
                else:
                    c.execute("select mlops.log_predictions(%s::jsonb)",
                              (Jsonb([{"model": "churn", "request_id": r, "latency_ms": k} for r in mine]),))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert count(conn, "request_id like 'conc-%%'") == 60
    assert conn.execute("select count(*) from mlops.prediction_requests where request_id like 'conc-%%'"
                        ).fetchone() == (60,)
    # every key points at the row that exists
    assert conn.execute("""select count(*) from mlops.prediction_requests r join mlops.predictions p
                            on p.id = r.prediction_id and p.request_id = r.request_id
                           where r.request_id like 'conc-%%'""").fetchone() == (60,)


def test_partition_rollover_across_midnight(client: pgmlops.Client, conn: Conn) -> None:
    before = datetime(2025, 6, 1, 23, 59, 59, 900000, tzinfo=UTC)
    after = before + timedelta(milliseconds=200)
    client.predictions.log("churn", request_id="mid-a", created_at=before)
    client.predictions.log("churn", request_id="mid-b", created_at=after)
    parts = dict(conn.execute("select request_id, tableoid::regclass::text from mlops.predictions"
                              " where request_id in ('mid-a', 'mid-b')").fetchall())
    assert parts == {"mid-a": "mlops.predictions_p20250601_000000", "mid-b": "mlops.predictions_p20250602_000000"}
    # a backfill of old rows creates only the partition it needs, not the days in between
    assert conn.execute("select count(*) from mlops.prediction_partitions where lower_bound"
                        " between '2025-06-03' and '2025-06-30'").fetchone() == (0,)
    # partitions are made ahead of now
    row = conn.execute("select mlops.maintain_predictions()").fetchone()
    assert row is not None
    ahead = conn.execute("select count(*) from mlops.prediction_partitions"
                         " where lower_bound >= date_bin('1 day', now(), '2000-01-01 00:00+00')").fetchone()
    assert ahead is not None and ahead[0] >= 4


def test_retention_drops_only_old_partitions(client: pgmlops.Client, conn: Conn) -> None:
    for day in (10, 11, 12):
        client.predictions.log("churn", request_id=f"ret-{day}", created_at=datetime(2024, 3, day, 12, tzinfo=UTC))
    client.predictions.feedback("ret-10", label="yes")
    assert client.predictions.drop_before(datetime(2024, 3, 11, 12, tzinfo=UTC)) >= 1
    left = {r[0] for r in conn.execute("select request_id from mlops.predictions where request_id like 'ret-%%'")}
    assert left == {"ret-11", "ret-12"}
    assert conn.execute("select count(*) from mlops.prediction_partitions where name like '%%20240310%%'"
                        ).fetchone() == (0,)
    assert conn.execute("select count(*) from pg_catalog.pg_class where relname = 'predictions_p20240311_000000'"
                        ).fetchone() == (1,)
    assert conn.execute("select request_id from mlops.prediction_requests where request_id like 'ret-%%'"
                        " order by 1").fetchall() == [("ret-11",), ("ret-12",)]
    assert conn.execute("select count(*) from mlops.prediction_feedback where request_id = 'ret-10'"
                        ).fetchone() == (0,)
    assert count(conn, "created_at >= '2025-01-01'") > 0  # newer data untouched


def test_feedback_before_prediction_is_kept(client: pgmlops.Client, conn: Conn) -> None:
    assert client.predictions.feedback("early-1", label="yes", value=1.0) is False
    assert client.predictions.feedback("early-2", correct=False) is False
    client.predictions.log("oracle", request_id="early-1", label="yes", score=0.25, version=1,
                           created_at=datetime(2025, 2, 1, tzinfo=UTC))
    client.predictions.log("oracle", request_id="early-2", label="yes", version=1,
                           created_at=datetime(2025, 2, 1, tzinfo=UTC))
    rows = conn.execute("select request_id, actual_label, correct, abs_error from mlops.prediction_outcomes"
                        " where request_id like 'early-%%' order by 1").fetchall()
    assert rows == [("early-1", "yes", True, 0.75), ("early-2", None, False, None)]
    assert client.predictions.feedback("early-1", label="no") is True  # replaced, last wins
    assert conn.execute("select correct from mlops.prediction_outcomes where request_id = 'early-1'"
                        ).fetchone() == (False,)


def _oracle_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = datetime(2025, 5, 5, 21, 0, tzinfo=UTC)
    times = [start + timedelta(seconds=int(s)) for s in rng.integers(0, 4 * 3600, n)]  # crosses midnight
    labels = rng.choice(["a", "b", "c"], n)
    return pd.DataFrame({
        "request_id": [f"or-{seed}-{i}" for i in range(n)],
        "model": "oracle",
        "version": rng.integers(1, 3, n),
        "label": labels,
        "score": rng.normal(size=n).round(3),
        "confidence": rng.uniform(0, 1, n).round(4),
        "latency_ms": rng.gamma(2.0, 5.0, n).round(3),
        "error": [("boom" if u < 0.1 else None) for u in rng.uniform(size=n)],
        "features": [{"x": float(v)} for v in rng.normal(size=n)],
        "created_at": times,
    })


def test_monitoring_matches_pandas_oracle(client: pgmlops.Client, conn: Conn) -> None:
    df = _oracle_frame(400, 1)
    assert client.predictions.log_many(df, chunk_size=150, progress=False) == 400
    assert client.predictions.log_many(df.iloc[:50], progress=False) == 0  # idempotent
    rng = np.random.default_rng(7)
    fb = df.sample(200, random_state=3).copy()
    fb["actual_label"] = rng.choice(["a", "b", "c"], len(fb))
    fb["actual_value"] = rng.normal(size=len(fb)).round(3)
    for r in fb.itertuples():
        client.predictions.feedback(str(r.request_id), label=str(r.actual_label),
                                    value=float(r.actual_value))  # type: ignore[arg-type]

    got = client.predictions.performance("oracle", since=datetime(2025, 5, 5, tzinfo=UTC))
    m = df.merge(fb[["request_id", "actual_label", "actual_value"]], on="request_id", how="left")
    m["hour"] = pd.to_datetime(m["created_at"]).dt.floor("h")
    m["is_error"] = m["error"].notna()
    m["correct"] = np.where(m["actual_label"].notna(), m["actual_label"] == m["label"], np.nan)
    m["abs_error"] = (m["actual_value"] - m["score"]).abs()
    expected = m.groupby(["hour", "version"]).agg(
        predictions=("request_id", "size"), error_rate=("is_error", "mean"),
        latency_p50=("latency_ms", lambda s: np.percentile(s, 50)),
        latency_p95=("latency_ms", lambda s: np.percentile(s, 95)),
        latency_p99=("latency_ms", lambda s: np.percentile(s, 99)),
        mean_confidence=("confidence", "mean"), feedback_count=("actual_label", "count"),
        accuracy=("correct", "mean"), mae=("abs_error", "mean")).reset_index()
    assert len(got) == len(expected) == 8
    got = got.sort_values(["time", "model_version"]).reset_index(drop=True)
    expected = expected.sort_values(["hour", "version"]).reset_index(drop=True)
    assert list(got["model_version"]) == list(expected["version"])
    assert [t.timestamp() for t in got["time"]] == [t.timestamp() for t in expected["hour"]]
    for col in ("predictions", "error_rate", "latency_p50", "latency_p95", "latency_p99", "mean_confidence",
                "feedback_count", "accuracy", "mae"):
        np.testing.assert_allclose(got[col].astype(float), expected[col].astype(float), rtol=1e-9, err_msg=col)

    view = pd.DataFrame(conn.execute(
        "select model_version, sum(predictions), sum(errors) from mlops.model_performance_hourly"
        " where model = 'oracle' and time >= '2025-05-05' group by 1 order by 1").fetchall())
    assert view[1].tolist() == df.groupby("version").size().tolist()
    assert view[2].tolist() == df.assign(e=df["error"].notna()).groupby("version")["e"].sum().tolist()
    dist = conn.execute("select label, sum(predictions) from mlops.prediction_label_distribution"
                        " where model = 'oracle' and time >= '2025-05-05' group by 1 order by 1").fetchall()
    assert dist == sorted(df["label"].value_counts().items())
    shares = conn.execute("select sum(share) from mlops.prediction_label_distribution"
                          " where model = 'oracle' and time >= '2025-05-05' group by time, model_version").fetchall()
    assert all(abs(s[0] - 1) < 1e-9 for s in shares)

    since = datetime(2025, 5, 5, tzinfo=UTC)
    v1 = m[m["version"] == 1]
    assert client.predictions.latency_p95("oracle", 1, since) == pytest.approx(np.percentile(v1["latency_ms"], 95))
    assert client.predictions.accuracy("oracle", 1, since) == pytest.approx(v1["correct"].dropna().mean())
    assert client.predictions.accuracy("churn", 99, since) is None


def test_detect_degradation_raises_alert(client: pgmlops.Client, conn: Conn) -> None:
    now = datetime.now(UTC)
    rows = []
    for i in range(60):
        rows.append({"model": "degr", "request_id": f"dg-b{i}", "label": "a", "latency_ms": 10.0 + i % 3,
                     "created_at": now - timedelta(days=1, minutes=i)})
        rows.append({"model": "degr", "request_id": f"dg-c{i}", "label": "a", "latency_ms": 40.0 + i % 3,
                     "created_at": now - timedelta(minutes=1 + i % 30)})
        rows.append({"model": "healthy", "request_id": f"hl-b{i}", "label": "a", "latency_ms": 10.0,
                     "created_at": now - timedelta(days=1, minutes=i)})
        rows.append({"model": "healthy", "request_id": f"hl-c{i}", "label": "a", "latency_ms": 10.0,
                     "created_at": now - timedelta(minutes=1 + i % 30)})
    assert client.predictions.log_many(rows, progress=False) == 240
    for i in range(60):
        client.predictions.feedback(f"dg-b{i}", label="a")
        client.predictions.feedback(f"dg-c{i}", label="a" if i % 2 else "b")  # accuracy 1.0 -> 0.5
        client.predictions.feedback(f"hl-b{i}", label="a")
        client.predictions.feedback(f"hl-c{i}", label="a")
    res = client.predictions.detect_degradation("degr", "1 hour", "7 days")
    bad = dict(zip(res.loc[res["degraded"], "metric"], res.loc[res["degraded"], "current_value"], strict=True))
    assert bad == {"accuracy": pytest.approx(0.5), "latency_p95": pytest.approx(42.0)}
    alert = conn.execute("select severity, details->'degraded' from mlops.alerts"
                         " where source = 'model_degradation' and subject = 'degr' and resolved_at is null").fetchall()
    assert len(alert) == 1 and len(alert[0][1]) == 2
    ok = client.predictions.detect_degradation("healthy")
    assert len(ok) == 3 and not ok["degraded"].any()
    assert conn.execute("select count(*) from mlops.alerts where subject = 'healthy'").fetchone() == (0,)


def test_timed_and_track(client: pgmlops.Client, conn: Conn) -> None:
    with client.predictions.timed("churn", request_id="tm-1", features={"a": 1}) as rec:
        rec.score = 0.75
    assert rec.prediction_id is not None and rec.latency_ms is not None and rec.latency_ms >= 0
    with pytest.raises(ZeroDivisionError), client.predictions.timed("churn", request_id="tm-2"):
        _ = 1 / 0

    @client.predictions.track("churn", unit_id="u1")
    def predict(features: dict[str, float]) -> str:
        return "yes" if features["x"] > 0 else "no"

    assert predict({"x": 1.0}) == "yes"
    rows = conn.execute("select request_id, score, label, error is not null, unit_id, features->>'x'"
                        " from mlops.predictions where request_id like 'tm-%%' or unit_id = 'u1'"
                        " order by id").fetchall()
    assert [r[1:] for r in rows] == [(0.75, None, False, None, None), (None, None, True, None, None),
                                     (None, "yes", False, "u1", "1.0")]


def bad(conn: Conn, sql: str, args: tuple[Any, ...], state: str, word: str) -> None:
    before = count(conn)
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql, args)
    assert info.value.sqlstate == state, info.value
    assert word in str(info.value)
    assert count(conn) == before


LOG = "select mlops.log_prediction(model => %s::text, latency_ms => %s::float8, features => %s::jsonb)"


@pytest.mark.parametrize(("args", "state", "word"), [
    (("nosuch", 1.0, None), "42704", "unknown model"),
    (("churn", float("nan"), None), "22023", "latency_ms"),
    (("churn", float("inf"), None), "22023", "latency_ms"),
    (("churn", -1.0, None), "22023", "latency_ms"),
    (("churn", 1.0, Jsonb({"blob": "x" * 70000})), "54000", "features"),
])
def test_log_prediction_bad_input(conn: Conn, args: tuple[Any, ...], state: str, word: str) -> None:
    bad(conn, LOG, args, state, word)


def test_bad_vectors_batches_and_feedback(client: pgmlops.Client, conn: Conn) -> None:
    bad(conn, "select mlops.log_prediction(model => 'churn', feature_vector => '[1,2]'::vector)", (),
        "22000", "feature_vector")
    bad(conn, "select mlops.log_prediction(model => 'churn', version => 7)", (), "42704", "unknown model")
    bad(conn, "select mlops.log_predictions(%s::jsonb)", (Jsonb({"model": "churn"}),), "22023", "predictions")
    bad(conn, "select mlops.log_predictions(%s::jsonb)",
        (Jsonb([{"model": "churn", "request_id": "bb-1"}, {"model": "churn", "latency_ms": -3}]),),
        "22023", "latency_ms")
    bad(conn, "select mlops.log_predictions(%s::jsonb)",
        (Jsonb([{"model": "churn", "feature_vector": [1, 2, 3]}, {"model": "churn", "feature_vector": [1, 2]}]),),
        "22000", "feature_vector")
    bad(conn, "select mlops.log_predictions(%s::jsonb)", (Jsonb([{"model": "ghost"}]),), "42704", "unknown model")
    before = count(conn)
    with pytest.raises(psycopg.Error) as info:
        client.predictions.log_many(pd.DataFrame({"model": ["churn", "churn"], "request_id": ["lm-1", "lm-2"],
                                                  "confidence": [0.5, 1.5]}), progress=False)
    assert info.value.sqlstate == "22023" and "confidence" in str(info.value)
    assert count(conn) == before
    with pytest.raises(ValueError, match="unknown column"):
        client.predictions.log_many([{"model": "churn", "colour": "red"}], progress=False)
    with pytest.raises(psycopg.Error) as info:
        client.predictions.feedback("x")
    assert info.value.sqlstate == "22023" and "feedback" in str(info.value)
    with pytest.raises(psycopg.Error) as info:
        client.predictions.feedback("x", value=float("nan"))
    assert info.value.sqlstate == "22023" and "value" in str(info.value)
    with pytest.raises(psycopg.Error) as info:
        client.predictions.configure(partition_interval="1 month")
    assert info.value.sqlstate == "22023" and "partition_interval" in str(info.value)
    with pytest.raises(psycopg.Error) as info:
        client.predictions.performance("ghost")
    assert info.value.sqlstate == "42704"


def test_configurable_interval(database_factory: Callable[..., str]) -> None:
    with pgmlops.connect(database_factory(prefix="pred_interval")) as c:
        register(c.conn, "m")
        c.predictions.configure(partition_interval="6 hours", premake=0)
        c.predictions.log("m", created_at=datetime(2025, 1, 1, 5, 59, tzinfo=UTC))
        c.predictions.log("m", created_at=datetime(2025, 1, 1, 6, 0, tzinfo=UTC))
        rows = c.conn.execute("select name, upper_bound - lower_bound as w from mlops.prediction_partitions"
                              " order by name").fetchall()
        assert [(r["name"], r["w"]) for r in rows] == [("predictions_p20250101_000000", timedelta(hours=6)),
                                                       ("predictions_p20250101_060000", timedelta(hours=6))]
        # a new width starts where the old partitions end
        c.predictions.configure(partition_interval="1 day")
        c.predictions.log("m", created_at=datetime(2025, 1, 1, 13, 0, tzinfo=UTC))
        row = c.conn.execute("select upper_bound - lower_bound as w from mlops.prediction_partitions"
                             " where name = 'predictions_p20250101_120000'").fetchone()
        assert row is not None and row["w"] == timedelta(hours=12)
        # retention policy applied by the scheduled upkeep: old partitions go, recent ones stay
        c.predictions.configure(retention="30 days")
        c.predictions.log("m", request_id="recent")
        assert c.predictions.maintain()["dropped"] == 3
        left = c.conn.execute("select request_id from mlops.predictions").fetchall()
        assert [r["request_id"] for r in left] == ["recent"]


def test_writer_role_can_log_and_reader_cannot(conn: Conn) -> None:
    with conn.transaction():
        conn.execute("set local role mlops_writer")
        conn.execute("select mlops.log_prediction(model => 'churn', request_id => 'role-1',"
                     " created_at => '2023-07-07 12:00+00')")  # needs a new partition (security definer)
        conn.execute("select mlops.log_feedback('role-1', label => 'x')")
    assert count(conn, "request_id = 'role-1'") == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
        conn.execute("set local role mlops_reader")
        conn.execute("select mlops.log_prediction(model => 'churn')")


def test_bi_views_have_simple_types_and_comments(conn: Conn) -> None:
    rows = conn.execute("""
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), col_description(c.oid, a.attnum),
               obj_description(c.oid, 'pg_class')
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
          join pg_attribute a on a.attrelid = c.oid and a.attnum > 0
         where n.nspname = 'mlops' and c.relkind = 'v'
           and c.relname in ('prediction_outcomes', 'model_performance_hourly', 'prediction_label_distribution')
    """).fetchall()
    assert {r[0] for r in rows} == {"prediction_outcomes", "model_performance_hourly",
                                    "prediction_label_distribution"}
    for view, col, typ, comment, vcomment in rows:
        assert comment and vcomment, (view, col)
        assert typ in ("text", "bigint", "integer", "double precision", "boolean", "timestamp with time zone"), \
            (view, col, typ)
    assert {r[0] for r in rows if r[1] == "time" and r[2] == "timestamp with time zone"} == {r[0] for r in rows}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(latency=st.floats(allow_nan=True, allow_infinity=True, width=64),
       confidence=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
def test_property_latency_and_confidence(conn: Conn, latency: float, confidence: float | None) -> None:
    valid = math.isfinite(latency) and latency >= 0 and (confidence is None or 0 <= confidence <= 1)
    before = count(conn, "model = 'healthy'")
    sql = ("select mlops.log_prediction(model => 'healthy', latency_ms => %s::float8, confidence => %s::float8,"
           " created_at => '2022-02-02 02:02+00')")
    if valid:
        conn.execute(sql, (latency, confidence))
        assert count(conn, "model = 'healthy'") == before + 1
    else:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(sql, (latency, confidence))
        assert info.value.sqlstate == "22023"
        assert ("latency_ms" if not (math.isfinite(latency) and latency >= 0) else "confidence") in str(info.value)
        assert count(conn, "model = 'healthy'") == before
