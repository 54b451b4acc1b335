"""Client methods of public SQL functions (one method per function, DESIGN.md): each returns what the
SQL function returns when called directly (or a known oracle value), and a bad argument surfaces
the database's own error class and SQLSTATE."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pgmlops
import psycopg
import pytest
from growthbook.core import chooseVariation, gbhash, getBucketRanges, inNamespace
from pgmlops.registry import ClaimedJob, LinearModel
from psycopg import sql
from psycopg.types.json import Jsonb
from scipy import stats
from scipy.spatial.distance import jensenshannon

Conn = psycopg.Connection[Any]
SHA = "0" * 64


def one(conn: Conn, query: str, *args: Any) -> Any:
    """The row of a query on a tuple-row connection (its one value when it has one column)."""
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def value(client: pgmlops.Client, query: str, *args: Any) -> Any:
    """The one value of a query on the client's own session (dict rows)."""
    row = client.conn.execute(query, args).fetchone()
    assert row is not None
    return next(iter(row.values()))


@contextmanager
def raises(sqlstate: str, error: type[psycopg.Error]) -> Iterator[None]:
    """The database's error passes through the client: its psycopg class and SQLSTATE."""
    with pytest.raises(error) as info:
        yield
    assert info.value.sqlstate == sqlstate, info.value


# ------------------------------------------------------------------------------------------ core

def test_python_info_and_resolve_alerts(client: pgmlops.Client, conn: Conn) -> None:
    info = client.python_info()
    assert info == one(conn, "select mlops.python_info()")
    assert info["python"] and "numpy" in info["modules"]
    for subject in ("m1", "m1", "m2"):  # an open alert of (source, subject) is refreshed, not duplicated
        conn.execute("select mlops._raise_alert('api_test', %s::text, 'warning', 'x')", (subject,))
    assert client.resolve_alerts("api_test", "m1") == 1
    assert client.resolve_alerts("api_test", "m1") == 0
    assert one(conn, "select mlops.resolve_alerts('api_test', 'm2')") == 1
    assert one(conn, "select count(*) from mlops.alert_log where source = 'api_test' and is_open") == 0


@pytest.fixture(scope="module")
def tenancy_dsn(database_factory: Callable[..., str]) -> str:
    """A database of its own: enable_tenancy is a one-way switch."""
    return database_factory(prefix="client_api_tenancy")


def test_tenancy_methods(tenancy_dsn: str) -> None:
    with pgmlops.connect(tenancy_dsn) as c, psycopg.connect(tenancy_dsn, autocommit=True) as su:
        for role in ("api_tenant_owner", "api_tenant_app"):
            su.execute(sql.SQL("do $$ begin if not exists (select from pg_roles where rolname = {r}) then "
                               "create role {i} nologin; end if; end $$").format(r=sql.Literal(role),
                                                                                   i=sql.Identifier(role)))
        assert c.tenancy_enabled() is False and one(su, "select mlops.tenancy_enabled()") is False
        assert c.current_tenant() is None
        superuser = one(su, "select current_user")
        with raises("22023", psycopg.errors.InvalidParameterValue):  # a superuser owner bypasses RLS: refused
            c.enable_tenancy(superuser)
        assert c.tenancy_enabled() is False
        summary = c.enable_tenancy("api_tenant_owner", existing_tenant="legacy")
        assert summary["tables"] >= 20 and summary["keys_rebuilt"] >= 5
        assert c.tenancy_enabled() is True and one(su, "select mlops.tenancy_enabled()") is True
        c.add_tenant_role("acme", "api_tenant_app")
        assert su.execute("select tenant, role from mlops.tenant_roles").fetchall() == [("acme", "api_tenant_app")]
        with raises("22023", psycopg.errors.InvalidParameterValue):
            c.add_tenant_role("Not A Tenant!", "api_tenant_app")
        c.conn.execute("set mlops.tenant = 'acme'")  # the superuser is a member of every role
        assert c.current_tenant() == "acme" == value(c, "select mlops.current_tenant()")
        c.conn.execute("set mlops.tenant = 'nobody'")
        assert c.current_tenant() is None


# -------------------------------------------------------------------------------------- registry

def test_set_version_status_and_artifact_uri(client: pgmlops.Client, conn: Conn) -> None:
    reg = client.registry
    reg.register("api_status")
    v1 = reg.log_version("api_status", LinearModel([1.0, 2.0], 0.5))
    reg.set_version_status("api_status", v1, "failed")
    assert reg.get_version("api_status", v1).status == "failed"
    assert one(conn, "select v.status from mlops.model_versions v join mlops.models m on m.id = v.model_id "
                     "where m.name = 'api_status' and v.version = %s", v1) == "failed"
    conn.execute("select mlops.set_version_status('api_status', %s, 'registered')", (v1,))
    assert reg.get_version("api_status", v1).status == "registered"
    with raises("22023", psycopg.errors.InvalidParameterValue):
        reg.set_version_status("api_status", v1, "production")
    with raises("P0002", psycopg.errors.NoDataFound):
        reg.set_version_status("api_status", 99, "failed")

    digest = hashlib.sha256(b"stored elsewhere").hexdigest()
    v2 = reg.log_version("api_status", artifact_uri="s3://bucket/model.onnx", sha256=digest, flavor="onnx",
                         metrics={"auc": 0.8})
    got = reg.get_version("api_status", v2)
    assert (got.artifact_uri, got.artifact_sha256, got.flavor) == ("s3://bucket/model.onnx", digest, "onnx")
    assert one(conn, "select artifact is null from mlops.model_versions where artifact_uri = 's3://bucket/model.onnx'")
    with raises("22023", psycopg.errors.InvalidParameterValue):  # a URI needs its sha256
        reg.log_version("api_status", artifact_uri="s3://bucket/other.onnx")
    with raises("22023", psycopg.errors.InvalidParameterValue):  # a wrong checksum of stored bytes is refused
        reg.log_version("api_status", b"bytes", sha256=digest)


def test_predict_cache(client: pgmlops.Client) -> None:
    reg = client.registry
    reg.register("api_cache", task="regression")
    reg.log_version("api_cache", LinearModel([1.0, 2.0], 0.5))
    reg.set_alias("api_cache", "production", 1)
    off = reg.predict_cache()
    assert off == value(client, "select mlops.predict_cache()")  # the same session's cache
    assert off["ttl_seconds"] == 0 and off["entries"] == 0
    assert reg.predict_cache(60)["ttl_seconds"] == 60
    assert [reg.predict("api_cache", "production", [1, 1]) for _ in range(3)] == [3.5] * 3
    on = reg.predict_cache()
    assert (on["hits"], on["misses"], on["entries"]) == (2, 1, 1)
    assert reg.predict_cache(0)["entries"] == 0
    with raises("22023", psycopg.errors.InvalidParameterValue):
        reg.predict_cache(-1)


def test_training_job_methods(client: pgmlops.Client, conn: Conn) -> None:
    reg = client.registry
    reg.register("api_jobs")
    job = reg.submit_job("api_jobs", {"epochs": 2}, lease_seconds=600)
    claimed = reg.claim_job("w1", "api_jobs")
    assert isinstance(claimed, ClaimedJob)
    assert (claimed.job, claimed.model, claimed.config, claimed.attempt) == (job, "api_jobs", {"epochs": 2}, 1)
    row = one(conn, "select status, worker, lease_until from mlops.training_job_queue where id = %s", job)
    assert row == ("running", "w1", claimed.lease_until) and 590 < claimed.lease_left <= 600
    assert reg.claim_job("w1", "api_jobs") is None
    lease = reg.report_progress(job, 0.5, {"loss": 0.3}, "epoch 1", worker="w1")
    assert lease == one(conn, "select lease_until from mlops.training_job_queue where id = %s", job)
    with raises("55000", psycopg.errors.ObjectNotInPrerequisiteState):  # another worker's job
        reg.report_progress(job, 0.6, worker="w2")
    version = reg.complete_job(job, LinearModel([3.0], 1.0), metrics={"loss": 0.1}, worker="w1")
    assert one(conn, "select q.status, v.version, v.metrics, v.params from mlops.training_job_queue q "
                     "join mlops.model_versions v on v.id = q.version_id where q.id = %s", job) == (
        "succeeded", version, {"loss": 0.1}, {"epochs": 2})
    assert reg.load("api_jobs", version) == LinearModel([3.0], 1.0)
    with raises("55000", psycopg.errors.ObjectNotInPrerequisiteState):  # finished: the lease is gone
        reg.report_progress(job)

    failing = reg.submit_job("api_jobs")
    assert (c := reg.claim_job("w1", "api_jobs")) is not None and c.job == failing
    reg.fail_job(failing, "out of memory", worker="w1")
    assert one(conn, "select status, error from mlops.training_job_queue where id = %s", failing) == (
        "failed", "out of memory")
    with raises("22023", psycopg.errors.InvalidParameterValue):
        reg.fail_job(failing, " ")

    expiring = reg.submit_job("api_jobs", max_attempts=2)
    assert reg.claim_job("w1", "api_jobs") is not None
    conn.execute("update mlops.training_job_queue set lease_until = now() - interval '1 second' where id = %s",
                 (expiring,))
    assert reg.requeue_expired_jobs() == 1
    assert one(conn, "select mlops.requeue_expired_training_jobs()") == 0
    assert one(conn, "select status, worker from mlops.training_job_queue where id = %s", expiring) == ("queued", None)
    with raises("22023", psycopg.errors.InvalidParameterValue):
        reg.claim_job(" ")


# ----------------------------------------------------------------------------------- predictions

def test_log_batch(client: pgmlops.Client, conn: Conn) -> None:
    client.registry.register("api_log")
    client.registry.log_version("api_log", b"x")
    when = datetime(2026, 1, 5, 12, 30, tzinfo=UTC)
    rows = [{"model": "api_log", "request_id": "al-1", "score": 0.7, "latency_ms": 3.0, "created_at": when,
             "features": {"x": 1}},
            {"model": "api_log", "request_id": "al-2", "label": "yes", "version": 1, "created_at": when}]
    assert client.predictions.log_batch(rows) == 2
    assert client.predictions.log_batch(rows) == 0  # repeats skipped
    assert one(conn, "select mlops.log_predictions(%s::jsonb)", Jsonb(
        [{"model": "api_log", "request_id": "al-3", "score": 0.1}, {"model": "api_log", "request_id": "al-1"}])) == 1
    got = conn.execute("select request_id, model_version, score, label, latency_ms, features, created_at "
                       "from mlops.predictions where model = 'api_log' order by request_id").fetchall()
    assert got[:2] == [("al-1", 1, 0.7, None, 3.0, {"x": 1}, when), ("al-2", 1, None, "yes", None, None, when)]
    assert len(got) == 3
    with raises("22023", psycopg.errors.InvalidParameterValue):
        client.predictions.log_batch([{"model": "api_log", "request_id": "al-4", "confidence": 2.0}])
    assert one(conn, "select count(*) from mlops.predictions where model = 'api_log'") == 3


def test_detect_degradation_thresholds(client: pgmlops.Client, conn: Conn) -> None:
    client.registry.register("api_degr")
    client.registry.log_version("api_degr", b"x")
    now = datetime.now(UTC)
    rows = []
    for i in range(30):
        rows.append({"model": "api_degr", "request_id": f"ad-b{i}", "label": "a", "latency_ms": 10.0,
                     "created_at": (now - timedelta(days=1, minutes=i)).isoformat()})
        rows.append({"model": "api_degr", "request_id": f"ad-c{i}", "label": "a", "latency_ms": 14.0,
                     "created_at": (now - timedelta(minutes=1 + i)).isoformat()})
    assert client.predictions.log_batch(rows) == 60
    for i in range(30):
        client.predictions.feedback(f"ad-b{i}", label="a")
        client.predictions.feedback(f"ad-c{i}", label="a" if i % 10 else "b")  # accuracy 1.0 -> 0.9

    def degraded(**kw: Any) -> set[str]:
        res = client.predictions.detect_degradation("api_degr", "1 hour", "7 days", **kw)
        named = ", ".join(f"{k} => %({k})s" for k in kw)
        direct = conn.execute(f"select metric, degraded from mlops.detect_degradation('api_degr', '1 hour', "
                              f"'7 days'{', ' + named if named else ''}) order by metric", kw).fetchall()
        assert sorted(zip(res["metric"], res["degraded"], strict=True)) == direct
        return set(res.loc[res["degraded"], "metric"])

    assert degraded() == {"accuracy"}  # defaults: drop 0.1 > 0.05, latency 1.4x < 1.5x
    assert degraded(max_accuracy_drop=0.2, max_latency_ratio=1.3) == {"latency_p95"}
    assert degraded(max_accuracy_drop=0.2, min_predictions=31) == set()  # too few predictions to judge
    assert degraded(max_error_rate_rise=-0.01, max_accuracy_drop=0.2) == {"error_rate"}
    with raises("22023", psycopg.errors.InvalidParameterValue):
        client.predictions.detect_degradation("api_degr", "-1 hour")


# ----------------------------------------------------------------------------------- experiments

def test_growthbook_hashing(client: pgmlops.Client, conn: Conn) -> None:
    exp = client.experiments
    for seed, value, version in [("exp", "user-1", 2), ("", "ü-2", 2), ("ns", "user-3", 1), ("x", "y", 3)]:
        got = exp.gb_hash(seed, value, version)
        assert got == gbhash(seed, value, version)
        assert got == one(conn, "select mlops.gb_hash(%s, %s, %s)", seed, value, version)
    ids = ["b", "a", "b", "日本", ""]
    frame = exp.gb_hash_batch("seed", ids)
    assert list(frame.columns) == ["unit_id", "n"] and list(frame["unit_id"]) == ids
    assert list(frame["n"]) == [gbhash("seed", u, 2) for u in ids]
    assert exp.gb_hash_batch("seed", []).empty
    for weights, coverage in [([0.5, 0.5], 1.0), ([0.2, 0.3, 0.5], 0.6), ([1.0, 1.0], 1.0)]:
        ranges = exp.gb_bucket_ranges(weights, coverage)
        assert [(r.range_start, r.range_end) for r in ranges] == getBucketRanges(len(weights), coverage, weights)
        assert [r.variant for r in ranges] == list(range(len(weights)))
        starts, ends = [r.range_start for r in ranges], [r.range_end for r in ranges]
        for n in (0.0, 0.1, 0.35, 0.59, 0.99):
            assert exp.gb_choose_variation(n, starts, ends) == chooseVariation(n, list(zip(starts, ends, strict=True)))
    assert exp.gb_choose_variation(0.9, [0.0], [0.5]) == -1
    for unit in ("u1", "u2", "u3"):
        assert exp.gb_in_namespace(unit, "ns", 0.0, 0.5) == inNamespace(unit, ("ns", 0.0, 0.5))
    with raises("22023", psycopg.errors.InvalidParameterValue):
        exp.gb_bucket_ranges([])
    with raises("22023", psycopg.errors.InvalidParameterValue):
        exp.gb_hash_batch("seed", ["a"], version=3)


def test_experiment_statistics(client: pgmlops.Client, conn: Conn) -> None:
    exp = client.experiments
    z = exp.two_proportion_ztest(120, 1000, 150, 1000)
    p1, p2, pooled = 0.12, 0.15, 0.135
    want_z = (p2 - p1) / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert z.z == pytest.approx(want_z, abs=1e-12) and z.p_value == pytest.approx(2 * stats.norm.sf(want_z), rel=1e-9)
    assert (z.z, z.p_value) == one(conn, "select * from mlops.two_proportion_ztest(120, 1000, 150, 1000)")
    assert exp.two_proportion_ztest(0, 10, 0, 10).z is None
    w = exp.welch_ttest(10.0, 2.0, 30, 11.0, 3.0, 40)
    ref = stats.ttest_ind_from_stats(11.0, 3.0, 40, 10.0, 2.0, 30, equal_var=False)
    assert w.t == pytest.approx(ref.statistic, rel=1e-9) and w.p_value == pytest.approx(ref.pvalue, rel=1e-7)
    assert (w.t, w.df, w.p_value) == one(conn, "select * from mlops.welch_ttest(10, 2, 30, 11, 3, 40)")
    srm = exp.srm_test([5000, 5200], [0.5, 0.5])
    ref_srm = stats.chisquare([5000, 5200], [5100, 5100])
    assert srm.chi2 == pytest.approx(ref_srm.statistic) and srm.p_value == pytest.approx(ref_srm.pvalue, rel=1e-7)
    assert (srm.chi2, srm.p_value) == one(conn, "select * from mlops.srm_test(array[5000, 5200], array[0.5, 0.5])")
    assert exp.chance_to_beat(1.0, 0.1, 1.2, 0.2) == pytest.approx(stats.norm.cdf(0.2 / math.sqrt(0.05)), rel=1e-9)
    assert exp.chance_to_beat(1.0, 0.0, 1.0, 0.0) is None
    with raises("22023", psycopg.errors.InvalidParameterValue):
        exp.welch_ttest(1.0, 1.0, 1, 2.0, 1.0, 10)
    with raises("22023", psycopg.errors.InvalidParameterValue):
        exp.srm_test([1, 2, 3], [0.5, 0.5])


# ----------------------------------------------------------------------------------------- drift

def test_drift_statistics(client: pgmlops.Client, conn: Conn) -> None:
    drift = client.drift
    p, q = [0.1, 0.4, 0.5], [0.3, 0.3, 0.4]
    assert drift.js_distance(p, q, base=2) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)
    assert drift.js_distance(p, q, base=2) == one(conn, "select mlops.js_distance(%s::float8[], %s::float8[], 2)", p, q)
    assert drift.js_distance(p, q) == pytest.approx(jensenshannon(p, q), abs=1e-12)
    cats_a, cats_b = ["a", "a", "b"], ["a", "b", "b", "c"]
    assert drift.js_distance(cats_a, cats_b, base=2) == one(
        conn, "select mlops.js_distance(%s::text[], %s::text[], base => 2)", cats_a, cats_b)
    ref_counts, cur_counts = [50.0, 30.0, 20.0, 0.0], [40.0, 30.0, 20.0, 10.0]
    r = np.maximum(np.array(ref_counts) / 100, 1e-4)
    c = np.maximum(np.array(cur_counts) / 100, 1e-4)
    assert drift.psi_binned(ref_counts, cur_counts) == pytest.approx(float(np.sum((c - r) * np.log(c / r))))
    assert drift.psi_binned(ref_counts, cur_counts) == one(conn, "select mlops.psi_binned(%s::float8[], %s::float8[])",
                                                           ref_counts, cur_counts)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 3)).astype(np.float32)
    b = (rng.normal(size=(25, 3)) + 1.0).astype(np.float32)
    mmd = drift.mmd_rbf(a, b, permutations=50)
    assert (mmd.mmd2, mmd.p_value, mmd.bandwidth) == one(
        conn, "select * from mlops.mmd_rbf(%s::real[], %s::real[], 50)", a.tolist(), b.tolist())
    assert mmd.mmd2 > 0 and mmd.p_value == pytest.approx(1 / 51)
    with raises("22023", psycopg.errors.InvalidParameterValue):
        drift.psi_binned([1.0, 2.0], [1.0])
    with raises("22023", psycopg.errors.InvalidParameterValue):
        drift.mmd_rbf(a, b[:, :2])
    with raises("22023", psycopg.errors.InvalidParameterValue):
        drift.js_distance(p, q, base=-1)


# ------------------------------------------------------------------------------------ embeddings

@pytest.fixture(scope="module")
def synth(dsn: str) -> Iterator[np.ndarray]:
    """A 3-dimensional model whose vectors are in the cache: the server embeds with no encoder."""
    texts = ["api alpha", "api beta", "api gamma", "api title 1\napi body 1", "api title 2\napi body 2",
             "api title 3\napi body 3"]
    vectors = np.random.default_rng(7).normal(size=(len(texts), 3)).astype(np.float32)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("select mlops.register_embedding_model(name => 'api_synth', dimension => 3, "
                  "package => 'no-such-pkg', artifact_sha256 => %s)", (SHA,))
        c.execute("select mlops.embedding_cache_store(array(select mlops.content_sha256(t) from unnest(%s::text[]) "
                  "with ordinality u(t, n) order by n), %s::text[]::vector[], 'api_synth')",
                  (texts, ["[" + ",".join(repr(float(x)) for x in v) + "]" for v in vectors]))
    yield vectors


def test_embedding_methods(client: pgmlops.Client, conn: Conn, synth: np.ndarray) -> None:
    emb = client.embeddings
    for text in ("api alpha", "é ü 日本", ""):
        assert emb.content_sha256(text) == hashlib.sha256(text.encode()).hexdigest()
        assert emb.content_sha256(text) == one(conn, "select mlops.content_sha256(%s)", text)
    one_vec = emb.embed_in_database("api beta", "api_synth")
    assert one_vec.dtype == np.float32 and np.allclose(one_vec, synth[1], atol=1e-6)
    assert np.allclose(one_vec, one(conn, "select mlops.embed('api beta', 'api_synth')::real[]"))
    batch = emb.embed_batch_in_database(["api gamma", "api alpha", "api gamma"], "api_synth")
    assert batch.shape == (3, 3) and np.allclose(batch, synth[[2, 0, 2]], atol=1e-6)
    direct = conn.execute("select embedding::real[] from mlops.embed_batch(array['api gamma', 'api alpha', "
                          "'api gamma'], 'api_synth') order by ordinality").fetchall()
    assert np.allclose(batch, [r[0] for r in direct])
    assert emb.embed_batch_in_database([], "api_synth").shape == (0, 3)
    with raises("22023", psycopg.errors.InvalidParameterValue):
        emb.embed_in_database("   ", "api_synth")
    with raises("42704", psycopg.errors.UndefinedObject):
        emb.embed_batch_in_database(["api alpha"], "no_such_model")

    conn.execute("create table api_src (id int primary key, title text, body text)")
    conn.execute("insert into api_src select g, 'api title ' || g, 'api body ' || g from generate_series(1, 3) g")
    emb.create_sync("api_sync", "api_src", columns=["title", "body"], model="api_synth")
    assert emb.sync_step("api_sync", batch_size=2) == 2
    assert one(conn, "select mlops.embedding_sync_step('api_sync', 10)") == 1
    assert emb.sync_step("api_sync") == 0
    stored = conn.execute("select id, embedding::real[] from api_src_embeddings order by id").fetchall()
    assert [s[0] for s in stored] == [1, 2, 3] and np.allclose([s[1] for s in stored], synth[3:], atol=1e-6)
    with raises("22023", psycopg.errors.InvalidParameterValue):
        emb.sync_step("api_sync", batch_size=0)
