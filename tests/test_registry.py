"""Model registry: versions, aliases + history, stages, promotion policies, comparison,
in-database inference (plain SQL vs pgmlops_python), BI views, bad input."""

from __future__ import annotations

import hashlib
import json
import select
import sysconfig
from typing import Any

import numpy as np
import pgmlops
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgmlops.registry import LinearModel
from psycopg import sql
from psycopg.types.json import Jsonb

Conn = psycopg.Connection[Any]
SITE_PACKAGES = sysconfig.get_paths()["purelib"]


def linear_artifact(coefficients: list[float], intercept: float = 0.0, link: str = "identity") -> bytes:
    return json.dumps({"coefficients": coefficients, "intercept": intercept, "link": link}).encode()


def new_version(
    conn: Conn, model: str, accuracy: float = 0.9, coefficients: list[float] | None = None, **kw: Any
) -> int:
    art = linear_artifact(coefficients or [1.0, 2.0], 0.5)
    row = conn.execute(
        "select mlops.create_model_version(model => %s::text, artifact => %s::bytea, flavor => 'linear', "
        "metrics => %s::jsonb, training_set => %s::text)",
        [model, art, Jsonb({"accuracy": accuracy}), kw.get("training_set")],
    ).fetchone()
    assert row is not None
    return int(row[0])


def snapshot(conn: Conn, model: str) -> Any:
    return conn.execute(
        "select (select pg_catalog.count(*) from mlops.model_versions v join mlops.models m on m.id = v.model_id "
        "         where m.name = %s::text),"
        "       (select pg_catalog.count(*) from mlops.alias_events),"
        "       (select pg_catalog.array_agg(a.alias || '=' || a.version_id order by a.alias)"
        "          from mlops.model_aliases a),"
        "       (select pg_catalog.array_agg(v.status order by v.id) from mlops.model_versions v)",
        [model],
    ).fetchone()


def test_versions_are_numbered_per_model_with_sha256_and_semver(conn: Conn) -> None:
    conn.execute("select mlops.register_model('ver_a', 'regression')")
    conn.execute("select mlops.register_model('ver_b', 'regression')")
    assert [new_version(conn, "ver_a") for _ in range(3)] == [1, 2, 3]
    assert new_version(conn, "ver_b") == 1
    art = linear_artifact([3.0, 1.0])
    v = conn.execute(
        "select mlops.create_model_version('ver_a', %s::bytea, flavor => 'linear', sha256 => %s::text, "
        "semver => 'major')",
        [art, hashlib.sha256(art).hexdigest()],
    ).fetchone()
    assert v == (4,)
    row = conn.execute("select artifact_sha256, semver from mlops.get_version('ver_a', '1.0.0')").fetchone()
    assert row == (hashlib.sha256(art).hexdigest(), "1.0.0")
    conn.execute("select mlops.create_model_version('ver_a', %s::bytea, flavor => 'linear', semver => 'patch')", [art])
    assert conn.execute("select version from mlops.get_version('ver_a', '1.0.1')").fetchone() == (5,)
    assert conn.execute(
        "select mlops._resolve_version('ver_a', 'latest') = mlops._resolve_version('ver_a', 'v5')"
    ).fetchone() == (True,)


def test_artifact_integrity_and_bad_input_leave_registry_unchanged(conn: Conn) -> None:
    conn.execute("select mlops.register_model('bad_in', 'classification')")
    new_version(conn, "bad_in")
    before = snapshot(conn, "bad_in")
    art = linear_artifact([1.0, 2.0])
    cases: list[tuple[str, list[Any], str, str]] = [
        (
            "select mlops.create_model_version('bad_in', %s::bytea, flavor => 'linear', sha256 => %s::text)",
            [art, hashlib.sha256(b"other").hexdigest()],
            "22023",
            "sha256",
        ),
        ("select mlops.create_model_version('nope', %s::bytea, flavor => 'linear')", [art], "P0002", "argument model"),
        (
            "select mlops.create_model_version('bad_in', %s::bytea, flavor => 'sklearn')",
            [b"not a pickle"],
            "22023",
            "argument artifact",
        ),
        (
            "select mlops.create_model_version('bad_in', %s::bytea, flavor => 'linear')",
            [b'{"coefficients": ["x"]}'],
            "22023",
            "argument artifact",
        ),
        (
            "select mlops.create_model_version('bad_in', %s::bytea, flavor => 'linear', signature => %s::jsonb)",
            [art, Jsonb({"inputs": ["a", "b", "c"]})],
            "22023",
            "argument signature",
        ),
        (
            "select mlops.create_model_version('bad_in', %s::bytea, flavor => 'tensorflow')",
            [art],
            "22023",
            "argument flavor",
        ),
        (
            "select mlops.create_model_version('bad_in', %s::bytea, flavor => 'linear', semver => 'one')",
            [art],
            "22023",
            "argument semver",
        ),
        (
            "select mlops.create_model_version('bad_in', %s::bytea, metrics => %s::jsonb)",
            [art, Jsonb({"acc": "high"})],
            "22023",
            "argument metrics",
        ),
        (
            "select mlops.create_model_version('bad_in', artifact_uri => %s::text)",
            ["s3://x/y"],
            "22023",
            "argument sha256",
        ),
        ("select mlops.set_alias('bad_in', 'production', %s::integer)", [99], "P0002", "argument version"),
        ("select mlops.set_alias('bad_in', 'Prod!', %s::integer)", [1], "22023", "alias"),
        ("select mlops.set_alias('bad_in', 'production', %s::integer, force => true)", [1], "22023", "argument reason"),
        ("select mlops.rollback('bad_in', %s::text)", ["production"], "55000", "argument alias"),
        ("select mlops.delete_alias('bad_in', %s::text)", ["production"], "P0002", "argument alias"),
        ("select mlops._resolve_version('bad_in', %s::text)", ["champion"], "P0002", "argument alias_or_version"),
        ("select mlops._resolve_version('ghost', %s::text)", ["1"], "P0002", "argument model"),
        ("select mlops.register_model('bad_in', %s::text)", ["regression"], "42710", "argument name"),
        ("select mlops.register_model('x', %s::text)", ["vision"], "22023", "argument task"),
        (
            "select mlops.set_promotion_policy('bad_in', 'production', %s::jsonb)",
            [Jsonb([{"kind": "vibes"}])],
            "22023",
            "rule 1",
        ),
        (
            "select mlops.set_promotion_policy('bad_in', 'production', %s::jsonb)",
            [Jsonb([{"kind": "metric", "metric": "accuracy"}])],
            "22023",
            "rule 1",
        ),
    ]
    for query, params, state, needle in cases:
        with pytest.raises(psycopg.Error) as err:
            conn.execute(query, params)
        assert err.value.diag.sqlstate == state, query
        assert needle in str(err.value), (query, str(err.value))
    assert snapshot(conn, "bad_in") == before


def test_aliases_history_stages_and_rollback_twice(conn: Conn) -> None:
    conn.execute("select mlops.register_model('alias_m', 'classification')")
    for _ in range(4):
        new_version(conn, "alias_m")
    for v in (1, 2, 3):
        conn.execute(
            "select mlops.set_alias('alias_m', 'production', %s::integer, reason => %s::text)", [v, f"ship {v}"]
        )
    conn.execute("select mlops.set_alias('alias_m', 'staging', 4)")
    statuses = dict(
        conn.execute("select version, status from mlops.model_versions_bi where model = 'alias_m'").fetchall()
    )
    assert statuses == {1: "archived", 2: "archived", 3: "production", 4: "staging"}
    assert conn.execute("select mlops.rollback('alias_m', 'production', 'bad deploy')").fetchone() == (2,)
    assert conn.execute("select mlops.rollback('alias_m', 'production')").fetchone() == (1,)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("select mlops.rollback('alias_m', 'production')")
    assert conn.execute("select version from mlops.get_version('alias_m', 'production')").fetchone() == (1,)
    hist = conn.execute(
        "select action, from_version, to_version, reason from mlops.alias_history "
        "where model = 'alias_m' and alias = 'production' order by event_id"
    ).fetchall()
    assert hist == [
        ("set", None, 1, "ship 1"),
        ("set", 1, 2, "ship 2"),
        ("set", 2, 3, "ship 3"),
        ("rollback", 3, 2, "bad deploy"),
        ("rollback", 2, 1, None),
    ]
    statuses = dict(
        conn.execute("select version, status from mlops.model_versions_bi where model = 'alias_m'").fetchall()
    )
    assert statuses == {1: "production", 2: "archived", 3: "archived", 4: "staging"}
    # setting the same version again records nothing
    assert conn.execute("select mlops.set_alias('alias_m', 'staging', 4)").fetchone() == (None,)
    conn.execute("select mlops.delete_alias('alias_m', 'staging', 'retire')")
    assert conn.execute(
        "select status from mlops.model_versions_bi where model = 'alias_m' and version = 4"
    ).fetchone() == ("archived",)
    assert conn.execute("select mlops.rollback('alias_m', 'staging')").fetchone() == (4,)
    # failed versions can never get an alias
    conn.execute("select mlops.set_version_status('alias_m', 2, 'failed')")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="failed"):
        conn.execute("select mlops.set_alias('alias_m', 'production', 2, reason => 'x', force => true)")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="holds an alias"):
        conn.execute("select mlops.set_version_status('alias_m', 1, 'failed')")


def test_alias_move_notifies(dsn: str, conn: Conn) -> None:
    conn.execute("select mlops.register_model('notify_m', 'regression')")
    new_version(conn, "notify_m")
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("listen mlops_registry")
        conn.execute("select mlops.set_alias('notify_m', 'production', 1, reason => 'go')")
        select.select([listener.fileno()], [], [], 5)
        payloads = [json.loads(n.payload) for n in listener.notifies(timeout=1, stop_after=1)]
    assert payloads and payloads[0]["model"] == "notify_m" and payloads[0]["to"] == 1
    assert payloads[0]["alias"] == "production" and payloads[0]["from"] is None


def test_promotion_policy_gates(conn: Conn) -> None:
    conn.execute("select mlops.register_model('gate_m', 'classification')")
    low = new_version(conn, "gate_m", accuracy=0.85)
    high = new_version(conn, "gate_m", accuracy=0.95)
    rules = [
        {"kind": "metric", "metric": "accuracy", "min": 0.9},
        {"kind": "min_time_under_alias", "alias": "staging", "hours": 24},
        {"kind": "no_open_drift_alert"},
    ]
    conn.execute("select mlops.set_promotion_policy('gate_m', 'production', %s::jsonb)", [Jsonb(rules)])
    conn.execute("select mlops.set_alias('gate_m', 'staging', %s::integer)", [low])
    before = snapshot(conn, "gate_m")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as err:
        conn.execute("select mlops.set_alias('gate_m', 'production', %s::integer)", [low])
    msg = str(err.value)
    assert "rule 1 (metric)" in msg and "0.85" in msg and "rule 2 (min_time_under_alias)" in msg
    assert "rule 3" not in msg
    assert snapshot(conn, "gate_m") == before
    # a drift alert on the model fails rule 3 too
    conn.execute(
        "select mlops._raise_alert('drift', 'gate_m:x', 'warning', 'drifted', %s::jsonb)", [Jsonb({"model": "gate_m"})]
    )
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match=r"rule 3 \(no_open_drift_alert"):
        conn.execute("select mlops.set_alias('gate_m', 'production', %s::integer)", [high])
    conn.execute("select mlops.resolve_alerts('drift', 'gate_m:x')")
    # 24 h in staging: backdate the staging move of `high`
    conn.execute("select mlops.set_alias('gate_m', 'staging', %s::integer)", [high])
    conn.execute(
        "update mlops.alias_events set changed_at = changed_at - interval '25 hours' "
        "where to_version_id = mlops._resolve_version('gate_m', %s::text) and alias = 'staging'",
        [str(high)],
    )
    conn.execute(
        "update mlops.alias_events set changed_at = changed_at - interval '60 hours' "
        "where to_version_id = mlops._resolve_version('gate_m', %s::text) and alias = 'staging'",
        [str(low)],
    )
    conn.execute("select mlops.set_alias('gate_m', 'production', %s::integer)", [high])
    # forcing the weak version records the override and the failed rules
    conn.execute(
        "select mlops.set_alias('gate_m', 'production', %s::integer, reason => 'incident 42', force => true)", [low]
    )
    row = conn.execute(
        "select forced, reason, failed_rule_count, failed_rules from mlops.alias_history "
        "where model = 'gate_m' order by event_id desc limit 1"
    ).fetchone()
    assert row is not None and row[0] is True and row[1] == "incident 42" and row[2] == 1 and "accuracy" in row[3]


def test_policy_hooks_latency_and_experiment(conn: Conn) -> None:
    conn.execute("select mlops.register_model('hook_m', 'regression')")
    new_version(conn, "hook_m")
    conn.execute(
        "select mlops.set_promotion_policy('hook_m', 'production', %s::jsonb)",
        [Jsonb([{"kind": "check", "function": "public.hook_ok"}])],
    )
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="not installed"):
        conn.execute("select mlops.set_alias('hook_m', 'production', 1)")
    conn.execute(
        "create function public.hook_ok(model text, version integer) returns boolean language sql "
        "as $$ select version > 1 $$"
    )
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="returned false"):
        conn.execute("select mlops.set_alias('hook_m', 'production', 1)")
    new_version(conn, "hook_m")
    conn.execute("select mlops.set_alias('hook_m', 'production', 2)")
    # max_p95_latency_ms reads mlops.model_version_latency_p95 when the predictions capability provides it
    conn.execute(
        "select mlops.set_promotion_policy('hook_m', 'canary', %s::jsonb)",
        [Jsonb([{"kind": "max_p95_latency_ms", "value": 50}])],
    )
    has_p95 = conn.execute(
        "select pg_catalog.to_regprocedure('mlops.model_version_latency_p95(text,integer,timestamptz)') is not null"
    ).fetchone()
    if has_p95 == (False,):
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="max_p95_latency_ms"):
            conn.execute("select mlops.set_alias('hook_m', 'canary', 1)")
    else:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="p95 latency"):
            conn.execute("select mlops.set_alias('hook_m', 'canary', 1)")  # nothing logged for version 1


def test_compare_versions(conn: Conn) -> None:
    conn.execute("select mlops.register_model('cmp_m', 'classification')")
    art = linear_artifact([1.0])
    for acc, lr, ts in ((0.8, 0.1, "set_a"), (0.9, 0.2, "set_b")):
        conn.execute(
            "select mlops.create_model_version('cmp_m', %s::bytea, flavor => 'linear', metrics => %s::jsonb, "
            "params => %s::jsonb, training_set => %s::text)",
            [art, Jsonb({"accuracy": acc, "f1": acc / 2}), Jsonb({"lr": lr, "depth": 3}), ts],
        )
    rows = {(r[0], r[1]): r for r in conn.execute("select * from mlops.compare_versions('cmp_m', 1, 2)").fetchall()}
    assert rows[("metric", "accuracy")][4] == pytest.approx(0.1)
    assert rows[("metric", "f1")][4] == pytest.approx(0.05)
    assert rows[("param", "lr")][2:4] == ("0.1", "0.2")
    assert ("param", "depth") not in rows
    assert rows[("lineage", "training_set")][2:4] == ("set_a", "set_b")


def test_linear_inference_sql_matches_numpy(conn: Conn) -> None:
    rng = np.random.default_rng(7)
    coef = rng.normal(size=5).round(6).tolist()
    conn.execute("select mlops.register_model('lin_m', 'classification')")
    for link in ("identity", "logistic"):
        conn.execute(
            "select mlops.create_model_version('lin_m', %s::bytea, flavor => 'linear', signature => %s::jsonb)",
            [linear_artifact(coef, 0.25, link), Jsonb({"inputs": ["a", "b", "c", "d", "e"]})],
        )
    x = rng.normal(size=(50, 5))
    for version, link in ((1, "identity"), (2, "logistic")):
        z = x @ np.array(coef) + 0.25
        expected = 1 / (1 + np.exp(-z)) if link == "logistic" else z
        sql_batch = conn.execute(
            "select mlops.predict_batch_sql('lin_m', %s::text, %s::float8[])", [str(version), x.tolist()]
        ).fetchone()
        py_batch = conn.execute(
            "select mlops.predict_batch('lin_m', %s::text, %s::float8[])", [str(version), x.tolist()]
        ).fetchone()
        assert sql_batch is not None and py_batch is not None
        np.testing.assert_allclose(sql_batch[0], expected, rtol=1e-12)
        np.testing.assert_allclose(py_batch[0], expected, rtol=1e-12)
        one = conn.execute(
            "select mlops.predict_sql('lin_m', %s::text, %s::float8[]), "
            "mlops.predict('lin_m', %s::text, %s::float8[]), "
            "mlops.predict('lin_m', %s::text, %s::jsonb), mlops.predict_sql('lin_m', %s::text, %s::jsonb)",
            [str(version), x[0].tolist()] * 2
            + [str(version), Jsonb(dict(zip("abcde", x[0].tolist(), strict=True)))] * 2,
        ).fetchone()
        assert one is not None
        np.testing.assert_allclose(one, [expected[0]] * 4, rtol=1e-12)
    for fn in ("mlops.predict_sql", "mlops.predict"):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="expects 5"):
            conn.execute(f"select {fn}('lin_m', '1', array[1, 2]::float8[])")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="NaN"):
            conn.execute(f"select {fn}('lin_m', '1', array[1, 2, 3, 4, 'NaN']::float8[])")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="lacks numeric values for e"):
            conn.execute(f"select {fn}('lin_m', '1', %s::jsonb)", [Jsonb({"a": 1, "b": 1, "c": 1, "d": 1})])


def test_sklearn_flavor_in_database(dsn: str, conn: Conn) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    est = LogisticRegression().fit(x, y)
    with pgmlops.connect(dsn) as client:
        client.registry.register("sk_m", "classification")
        v = client.registry.log_version("sk_m", est, metrics={"accuracy": float(est.score(x, y))})
        client.registry.set_alias("sk_m", "production", v)
        loaded = client.registry.load("sk_m", "production")
        np.testing.assert_array_equal(loaded.predict(x), est.predict(x))
        info = client.registry.get_version("sk_m", "production")
        assert info.signature == {"n_features": 3} and info.params["C"] == 1.0
    conn.execute(sql.SQL("set pgmlops.site_packages = {}").format(sql.Literal(SITE_PACKAGES)))
    got = conn.execute("select mlops.predict_batch('sk_m', 'production', %s::float8[])", [x[:20].tolist()]).fetchone()
    assert got is not None
    np.testing.assert_array_equal(got[0], est.predict(x[:20]).astype(float))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="expects 3"):
        conn.execute("select mlops.predict('sk_m', 'production', array[1, 2]::float8[])")
    # a pickle header with garbage behind it: registered, but refused clearly at load
    conn.execute("select mlops.create_model_version('sk_m', %s::bytea, flavor => 'sklearn')", [b"\x80\x04garbage"])
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="cannot be unpickled"):
        conn.execute("select mlops.predict('sk_m', 'latest', array[1, 2, 3]::float8[])")


def test_python_client_round_trip(client: pgmlops.Client) -> None:
    reg = client.registry
    reg.register("cli_m", "regression", description="client test")
    model = LinearModel([2.0, -1.0], 1.0, features=["x", "y"])
    v1 = reg.log_version("cli_m", model, metrics={"rmse": 1.5}, signature={"inputs": ["x", "y"]}, semver="1.0.0")
    v2 = reg.log_version("cli_m", LinearModel([2.5, -1.0], 1.0), metrics={"rmse": 1.2})
    assert (v1, v2) == (1, 2)
    reg.set_alias("cli_m", "production", v1)
    reg.set_alias("cli_m", "production", v2, reason="better rmse")
    assert reg.rollback("cli_m", "production") == v1
    loaded = reg.load("cli_m", "production")
    assert isinstance(loaded, LinearModel) and loaded.coefficients == [2.0, -1.0] and loaded.features == ["x", "y"]
    assert reg.predict("cli_m", "production", [1.0, 1.0]) == pytest.approx(2.0)
    assert reg.predict_batch("cli_m", v2, [[1.0, 1.0], [0.0, 0.0]]) == pytest.approx([2.5, 1.0])
    hist = reg.history("cli_m")
    assert list(hist["action"]) == ["set", "set", "rollback"]
    cmp = reg.compare_versions("cli_m", v1, v2)
    assert float(cmp.loc[cmp["key"] == "rmse", "delta"].iloc[0]) == pytest.approx(-0.3)
    assert reg.get_version("cli_m", "1.0.0").version == v1
    with pytest.raises(psycopg.errors.NoDataFound):
        reg.load("cli_m", "champion")
    assert reg.transition_stage("cli_m", v2, "staging") == "staging"
    job = reg.submit_job("cli_m", {"lr": 0.1})
    reg.cancel_job(job, "changed my mind")
    jobs = reg.jobs("cli_m")
    assert list(jobs["status"]) == ["cancelled"] and list(jobs["error"]) == ["changed my mind"]


def test_in_transaction_replays_after_a_serialization_failure(dsn: str, client: pgmlops.Client) -> None:
    """A concurrent move between our snapshot and our move makes PostgreSQL refuse ours (40001);
    the client replays the whole transaction once and counts it."""
    reg = client.registry
    reg.register("retry_m", "regression")
    for _ in range(3):
        reg.log_version("retry_m", LinearModel([1.0], 0.0))
    reg.set_alias("retry_m", "production", 1)
    attempts: list[int] = []

    def move(c: pgmlops.Client) -> int | None:
        attempts.append(c.registry.get_version("retry_m", "production").version)  # takes the snapshot
        if len(attempts) == 1:
            with pgmlops.connect(dsn) as other:
                other.registry.set_alias("retry_m", "production", 2, reason="concurrent")
        return c.registry.set_alias("retry_m", "production", 3, reason="mine")

    before = client.retries
    client.in_transaction(move)
    assert attempts == [1, 2] and client.retries == before + 1
    assert reg.get_version("retry_m", "production").version == 3
    assert list(reg.history("retry_m")["reason"])[-2:] == ["concurrent", "mine"]
    reg.set_alias("retry_m", "production", 1)
    attempts.clear()
    with pytest.raises(psycopg.errors.SerializationFailure):
        client.in_transaction(move, attempts=1)
    assert client.conn.isolation_level is None  # restored


def test_bi_views_follow_the_rules(conn: Conn) -> None:
    for view in ("models_bi", "model_versions_bi", "alias_history", "training_jobs"):
        cols = conn.execute(
            "select a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
            "pg_catalog.col_description(a.attrelid, a.attnum) from pg_catalog.pg_attribute a "
            "where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped",
            [f"mlops.{view}"],
        ).fetchall()
        assert cols, view
        types = {name: typ for name, typ, _ in cols}
        assert types.get("time") == "timestamp with time zone", view
        assert not [n for n, t, _ in cols if t in ("jsonb", "json", "vector") or t.endswith("[]")], view
        assert all(comment for _, _, comment in cols), view
        assert conn.execute(
            "select pg_catalog.obj_description(%s::regclass, 'pg_class')", [f"mlops.{view}"]
        ).fetchone() != (None,)
        assert conn.execute(
            f"select pg_catalog.has_table_privilege('mlops_reader', 'mlops.{view}', 'select')"
        ).fetchone() == (True,)
    assert conn.execute(
        "select pg_catalog.has_function_privilege('mlops_reader', "
        "'mlops.set_alias(text,text,integer,text,boolean)', 'execute')"
    ).fetchone() == (False,)
    assert conn.execute(
        "select pg_catalog.has_function_privilege('mlops_admin', "
        "'mlops.set_alias(text,text,integer,text,boolean)', 'execute')"
    ).fetchone() == (True,)


def test_stage_transitions(conn: Conn) -> None:
    conn.execute("select mlops.register_model('stage_m', 'regression')")
    new_version(conn, "stage_m")
    new_version(conn, "stage_m")
    assert conn.execute("select mlops.transition_stage('stage_m', 1, 'staging')").fetchone() == ("staging",)
    assert conn.execute("select mlops.transition_stage('stage_m', 1, 'production')").fetchone() == ("production",)
    assert conn.execute("select mlops.transition_stage('stage_m', 2, 'staging')").fetchone() == ("staging",)
    assert conn.execute("select mlops.transition_stage('stage_m', 1, 'archived')").fetchone() == ("archived",)
    assert conn.execute("select production_version, staging_version from mlops.models_bi where model = 'stage_m'"
                        ).fetchone() == (None, 2)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="argument stage"):
        conn.execute("select mlops.transition_stage('stage_m', 2, 'live')")


def test_roles_can_do_their_part_and_no_more(dsn: str, conn: Conn) -> None:
    conn.execute("create role reg_admin login in role mlops_admin")
    conn.execute("create role reg_reader login in role mlops_reader")
    conn.execute("select mlops.register_model('role_m', 'regression')")
    new_version(conn, "role_m")
    with psycopg.connect(dsn, user="reg_admin", autocommit=True) as admin:
        admin.execute("select mlops.create_model_version('role_m', %s::bytea, flavor => 'linear')",
                      [linear_artifact([1.0, 1.0])])
        admin.execute("select mlops.set_promotion_policy('role_m', 'production', %s::jsonb)",
                      [Jsonb([{"kind": "metric", "metric": "accuracy", "min": 0.5}])])
        admin.execute("select mlops.set_alias('role_m', 'production', 1)")
        admin.execute("select mlops.set_alias('role_m', 'production', 2, reason => 'no metrics', force => true)")
        assert admin.execute("select mlops.rollback('role_m', 'production')").fetchone() == (1,)
        job = admin.execute("select mlops.submit_training_job('role_m')").fetchone()
        assert job is not None
        admin.execute("select * from mlops.claim_training_job('w', 'role_m')")
        admin.execute("select mlops.report_progress(%s::bigint, 0.5, log_line => 'x')", [job[0]])
        admin.execute("select mlops.complete_training_job(%s::bigint, artifact => %s::bytea, flavor => 'linear')",
                      [job[0], linear_artifact([2.0, 2.0])])
    with psycopg.connect(dsn, user="reg_reader", autocommit=True) as reader:
        assert reader.execute("select mlops.predict_sql('role_m', 'production', array[1, 1]::float8[])"
                              ).fetchone() == (3.5,)
        assert reader.execute("select mlops.predict('role_m', 'latest', array[1, 1]::float8[])").fetchone() == (4.0,)
        assert reader.execute("select pg_catalog.count(*) from mlops.alias_history where model = 'role_m'"
                              ).fetchone() == (3,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("select mlops.set_alias('role_m', 'production', 2)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("delete from mlops.alias_events")


def test_opt_in_result_cache(conn: Conn) -> None:
    conn.execute("select mlops.register_model('cache_m', 'regression')")
    new_version(conn, "cache_m")
    new_version(conn, "cache_m", coefficients=[10.0, 10.0])
    conn.execute("select mlops.set_alias('cache_m', 'production', 1)")
    q = "select mlops.predict('cache_m', 'production', array[1, 1]::float8[])"
    assert conn.execute(q).fetchone() == (3.5,)
    stats = conn.execute("select mlops.predict_cache()").fetchone()
    assert stats is not None and stats[0]["ttl_seconds"] == 0 and stats[0]["entries"] == 0  # off by default
    conn.execute("select mlops.predict_cache(ttl_seconds => 60)")
    assert [conn.execute(q).fetchone() for _ in range(3)] == [(3.5,)] * 3
    stats = conn.execute("select mlops.predict_cache()").fetchone()
    assert stats is not None and (stats[0]["hits"], stats[0]["misses"]) == (2, 1)
    # the cache is keyed by the resolved version: moving the alias is seen at once
    conn.execute("select mlops.set_alias('cache_m', 'production', 2)")
    assert conn.execute(q).fetchone() == (20.5,)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="argument ttl_seconds"):
        conn.execute("select mlops.predict_cache('NaN')")


def test_predict_entity_from_online_features(dsn: str, conn: Conn) -> None:
    conn.execute("select mlops.create_entity('reg_customer', 'int8')")
    conn.execute("""select mlops.create_feature_group('reg_fa', 'reg_customer', '{"x": "float8", "y": "float8"}')""")
    conn.execute("""select mlops.create_feature_group('reg_fb', 'reg_customer', '{"x": "float8"}')""")
    conn.execute("""select mlops.write_features('reg_fa', '[{"reg_customer_id": 1, "x": 1.5, "y": 2,
                    "event_ts": "2026-01-01"}]')""")
    conn.execute("""select mlops.write_features('reg_fb', '[{"reg_customer_id": 1, "x": 3,
                    "event_ts": "2026-01-01"}]')""")
    conn.execute("select mlops.register_model('ent_m', 'regression')")
    conn.execute("select mlops.create_model_version('ent_m', %s::bytea, flavor => 'linear', signature => %s::jsonb)",
                 [linear_artifact([1.0, 10.0, 100.0], 0.5),
                  Jsonb({"entity": "reg_customer", "features": ["reg_fa:x", "reg_fa:y", "reg_fb:x"]})])
    assert conn.execute("select mlops.predict_entity('ent_m', '1', '1')").fetchone() == (322.0,)
    assert conn.execute("select mlops.predict_sql('ent_m', '1', array[1.5, 2, 3]::float8[])").fetchone() == (322.0,)
    with pgmlops.connect(dsn) as client:
        assert client.registry.predict_entity("ent_m", "1", 1) == 322.0
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="MISSING"):
        conn.execute("select mlops.predict_entity('ent_m', '1', '2')")
    new_version(conn, "ent_m", coefficients=[1.0, 1.0, 1.0])
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no feature-store signature"):
        conn.execute("select mlops.predict_entity('ent_m', 'latest', '1')")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(features=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=6))
def test_property_bad_feature_vectors_are_refused_cleanly(conn: Conn, features: list[float]) -> None:
    conn.execute("select mlops.register_model('prop_m', 'regression', if_not_exists => true)")
    count = "select pg_catalog.count(*) from mlops.model_versions_bi where model = 'prop_m'"
    if conn.execute(count).fetchone() == (0,):
        conn.execute("select mlops.create_model_version('prop_m', %s::bytea, flavor => 'linear')",
                     [linear_artifact([1.0, -2.0, 0.5])])
    valid = len(features) == 3 and all(np.isfinite(features))
    coef = np.array([1.0, -2.0, 0.5])
    with np.errstate(all="ignore"):
        products = np.array(features[:3] if valid else [0.0, 0.0, 0.0]) * coef
    # float8 arithmetic in PostgreSQL refuses overflow and underflow: both paths then give 22003
    representable = bool(np.all(np.isfinite(products)) and np.isfinite(products.sum())
                         and not np.any((products == 0) & (np.array(features[:3] if valid else [0.0] * 3) != 0)))
    for fn in ("mlops.predict_sql", "mlops.predict"):
        if valid and representable:
            got = conn.execute(f"select {fn}('prop_m', '1', %s::float8[])", [features]).fetchone()
            assert got is not None
            assert got[0] == pytest.approx(float(products.sum()), rel=1e-9, abs=1e-9)
        elif valid:
            with pytest.raises(psycopg.errors.NumericValueOutOfRange, match="argument features"):
                conn.execute(f"select {fn}('prop_m', '1', %s::float8[])", [features])
        else:
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="argument features"):
                conn.execute(f"select {fn}('prop_m', '1', %s::float8[])", [features])
    assert conn.execute(count).fetchone() == (1,)


@pytest.mark.parametrize("fn", ["mlops.predict_sql", "mlops.predict"])
def test_extreme_features_give_clamped_scores_or_a_named_range_error(conn: Conn, fn: str) -> None:
    """A logistic model scores any finite logit (|z| > 709 made exp() overflow before), and products
    beyond float8's range are one named 22003 in the SQL and the PL/Python path alike."""
    conn.execute("select mlops.register_model('ext_m', 'classification', if_not_exists => true)")
    if conn.execute("select count(*) from mlops.model_versions_bi where model = 'ext_m'").fetchone() == (0,):
        conn.execute("select mlops.create_model_version('ext_m', %s::bytea, flavor => 'linear')",
                     [json.dumps({"coefficients": [1.0, 1.0], "intercept": 0.0, "link": "logistic"}).encode()])
    for features, expected in [([-800.0, 0.0], 1.0 / (1.0 + np.exp(700.0))), ([800.0, 0.0], 1.0),
                               ([-5.0, 2.0], 1.0 / (1.0 + np.exp(3.0)))]:
        got = conn.execute(f"select {fn}('ext_m', '1', %s::float8[])", [features]).fetchone()
        assert got is not None and got[0] == pytest.approx(expected, rel=1e-12, abs=0), features
    batch = conn.execute("select mlops.predict_batch_sql('ext_m', '1', %s::float8[])",
                         [[[-800.0, 0.0], [800.0, 0.0]]]).fetchone()
    assert batch is not None and batch[0] == pytest.approx([1.0 / (1.0 + np.exp(700.0)), 1.0], rel=1e-12)
    conn.execute("select mlops.register_model('ext_lin', 'regression', if_not_exists => true)")
    if conn.execute("select count(*) from mlops.model_versions_bi where model = 'ext_lin'").fetchone() == (0,):
        conn.execute("select mlops.create_model_version('ext_lin', %s::bytea, flavor => 'linear')",
                     [json.dumps({"coefficients": [0.5, 1.0], "intercept": 0.0}).encode()])
    got = conn.execute(f"select {fn}('ext_lin', '1', %s::float8[])", [[2.0, 1.0]]).fetchone()
    assert got == (2.0,)
    for features in ([5e-324, 0.0], [1.7e308, 1.7e308]):  # 5e-324 * 0.5 underflows; 0.85e308 + 1.7e308 overflows
        with pytest.raises(psycopg.errors.NumericValueOutOfRange, match="argument features"):
            conn.execute(f"select {fn}('ext_lin', '1', %s::float8[])", [features])
    with pytest.raises(psycopg.errors.NumericValueOutOfRange, match="argument features"):
        conn.execute("select mlops.predict_batch_sql('ext_lin', '1', %s::float8[])", [[[2.0, 1.0], [5e-324, 0.0]]])
