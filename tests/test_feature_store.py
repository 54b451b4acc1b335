"""Feature store: group layout and versions, online lookup with TTL, out-of-order and concurrent
writes, point-in-time training sets against a pandas merge_asof oracle, window aggregates,
lineage, freshness alerts, validation, NOTIFY, bad input."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pgmlops
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgmlops.errors import PgmlopsError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def scalar(conn: psycopg.Connection[Any], query: str, params: Any = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture(scope="module", autouse=True)
def entities(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("select mlops.create_entity('customer', 'int8', 'customers')")
        c.execute("select mlops.create_entity('item', 'text', 'items', key_column => 'sku')")


def test_group_layout_constraints_online_table_and_hnsw(conn: psycopg.Connection[Any]) -> None:
    table = scalar(conn, """select mlops.create_feature_group('layout', 'customer',
        '{"amount": {"type": "float8", "min": 0, "max": 100, "not_null": true},
          "seg": {"type": "text", "allowed": ["a", "b"]}, "emb": "vector(3)", "flag": "bool", "meta": "jsonb"}',
        ttl => '1 day')""")
    assert table == "mlops_features.layout__v1"
    cols = conn.execute("""select attname, format_type(atttypid, atttypmod) from pg_attribute where
                            attrelid = 'mlops_features.layout__v1'::regclass and attnum > 0
                            order by attnum""").fetchall()
    assert [c[0] for c in cols] == ["customer_id", "event_ts", "created_at", "amount", "seg", "emb", "flag", "meta"]
    assert dict(cols)["event_ts"] == "timestamp with time zone"
    assert dict(cols)["emb"].endswith("vector(3)")
    checks = {r[0] for r in conn.execute("""select conname from pg_constraint
               where conrelid = 'mlops_features.layout__v1'::regclass and contype = 'c'""")}
    assert {"amount__min", "amount__max", "amount__not_null", "amount__finite", "seg__allowed"} <= checks
    idx = {r[0]: r[1] for r in conn.execute(
        """select indexrelid::regclass::text, pg_get_indexdef(indexrelid) from pg_index where indrelid
             in ('mlops_features.layout__v1'::regclass, 'mlops_features.layout__v1_online'::regclass)""")}
    assert any("(customer_id, event_ts DESC" in d for d in idx.values())
    assert any("hnsw" in d and "(emb" in d for d in idx.values())
    assert scalar(conn, "select count(*) from mlops.features where group_name = 'layout'") == 5
    row = conn.execute("select key_column, ttl_seconds, feature_count, table_name from mlops.feature_groups "
                       "where group_name = 'layout'").fetchone()
    assert row == ("customer_id", 86400.0, 5, "layout__v1")
    comments = dict(conn.execute(
        """select c.relname || '.' || a.attname, col_description(a.attrelid, a.attnum) from pg_attribute a
             join pg_class c on c.oid = a.attrelid
            where a.attrelid in ('mlops_features.layout__v1'::regclass, 'mlops_features.layout__v1_online'::regclass)
              and a.attnum > 0 and not a.attisdropped""").fetchall())
    assert len(comments) == 16 and all(comments.values()), comments  # BI tools show them as descriptions
    assert comments["layout__v1.amount"] == "Feature amount (double precision, not null, >= 0, <= 100)."
    assert comments["layout__v1_online.seg"] == 'Feature seg (text, one of ["a", "b"]).'
    assert comments["layout__v1.customer_id"] == "Key of entity customer."


def test_bi_views_are_simple_and_fully_commented(conn: psycopg.Connection[Any]) -> None:
    for view in ("feature_groups", "features", "feature_freshness", "training_set_lineage"):
        rows = conn.execute("""select a.attname, format_type(a.atttypid, a.atttypmod),
                                      col_description(a.attrelid, a.attnum)
                                 from pg_attribute a where a.attrelid = ('mlops.' || %s)::regclass and a.attnum > 0""",
                            (view,)).fetchall()
        assert scalar(conn, "select obj_description(('mlops.' || %s)::regclass, 'pg_class')", (view,))
        assert ("time", "timestamp with time zone") in [(r[0], r[1]) for r in rows], view
        for name, typ, comment in rows:
            assert comment, f"{view}.{name} lacks a comment"
            assert typ not in ("jsonb", "json") and not typ.endswith("[]") and "vector" not in typ, f"{view}.{name}"


def test_schema_change_creates_version_old_stays_readable(conn: psycopg.Connection[Any]) -> None:
    conn.execute("""select mlops.create_feature_group('ver', 'customer', '{"a": "int8"}')""")
    conn.execute("""select mlops.write_features('ver', '[{"customer_id": 1, "event_ts": "2026-01-01", "a": 7}]')""")
    same = scalar(conn, """select mlops.create_feature_group('ver', 'customer', '{"a": "int8"}', description => 'x')""")
    assert same == "mlops_features.ver__v1"
    new = scalar(conn, """select mlops.create_feature_group('ver', 'customer', '{"a": "int8", "b": "text"}')""")
    assert new == "mlops_features.ver__v2"
    assert scalar(conn, "select a from mlops_features.ver__v1") == 7
    v1 = conn.execute("select values from mlops.get_online_features('customer', '{1}', '{ver@1:a}')").fetchone()
    v2 = conn.execute("select status from mlops.get_online_features('customer', '{1}', '{ver:a}')").fetchone()
    assert v1 == ({"a": 7},) and v2 == ({"a": "MISSING"},)
    assert [r[0] for r in conn.execute("select version from mlops.feature_groups where group_name = 'ver' "
                                       "order by version")] == [1, 2]


def test_online_status_ttl_enforced_on_read_and_purge(client: pgmlops.Client) -> None:
    fs = client.features
    fs.create_group("ttlg", "customer", {"x": "float8", "emb": "vector(2)"}, ttl=timedelta(days=1))
    now = datetime.now(UTC)
    fs.write("ttlg", pd.DataFrame({"customer_id": [1, 2],
                                   "event_ts": [now - timedelta(hours=1), now - timedelta(days=3)],
                                   "x": [1.5, 2.5], "emb": [[1.0, 2.0], [3.0, 4.0]]}))
    df = fs.online("customer", [2, 1, 3], ["ttlg:x", "ttlg:emb"])
    assert list(df["entity_key"]) == ["2", "1", "3"]
    assert list(df["x__status"]) == ["EXPIRED", "PRESENT", "MISSING"]
    assert df["x"].iloc[1] == 1.5 and pd.isna(df["x"].iloc[0]) and pd.isna(df["x"].iloc[2])
    assert df["emb"].iloc[1].tolist() == [1.0, 2.0]
    assert fs.purge_expired() >= 1
    assert list(fs.online("customer", [2, 1], ["ttlg:x"])["x__status"]) == ["MISSING", "PRESENT"]
    assert client.conn.execute("select count(*) as n from mlops_features.ttlg__v1").fetchone() == {"n": 2}


def test_out_of_order_writes_never_regress_online(conn: psycopg.Connection[Any]) -> None:
    conn.execute("""select mlops.create_feature_group('ooo', 'customer', '{"v": "int8"}')""")
    rng = np.random.default_rng(7)
    events = [(int(k), int(t)) for k, t in zip(rng.integers(0, 20, 400), rng.permutation(400), strict=True)]
    for start in range(0, len(events), 37):  # random batches, each a statement with mixed order
        batch = events[start:start + 37]
        conn.execute("select mlops.write_features('ooo', %s::jsonb)",
                     (json.dumps([{"customer_id": k, "event_ts": (T0 + timedelta(minutes=t)).isoformat(), "v": t}
                                  for k, t in batch]),))
    want = {}
    for k, t in events:
        want[k] = max(want.get(k, -1), t)
    got = dict(conn.execute("select customer_id, v from mlops_features.ooo__v1_online").fetchall())
    assert got == want
    # an older event written later does not overwrite
    k, t = next(iter(want.items()))
    conn.execute("insert into mlops_features.ooo__v1 (customer_id, event_ts, v) values (%s, %s, -1)",
                 (k, T0 + timedelta(minutes=t - 1)))
    assert scalar(conn, "select v from mlops_features.ooo__v1_online where customer_id = %s", (k,)) == t


def test_concurrent_writers_same_entity(dsn: str, conn: psycopg.Connection[Any]) -> None:
    conn.execute("""select mlops.create_feature_group('conc', 'customer', '{"v": "int8"}')""")
    rng = np.random.default_rng(11)
    plans = [[int(x) for x in rng.permutation(np.arange(w, 2000, 6))[:60]] for w in range(6)]
    errors: list[BaseException] = []

    def writer(minutes: list[int]) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                for m in minutes:
                    c.execute("insert into mlops_features.conc__v1 (customer_id, event_ts, v) "
                              "values (1, %s, %s), (2, %s, %s)",
                              (T0 + timedelta(minutes=m), m, T0 + timedelta(minutes=m), m))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    newest = max(max(p) for p in plans)
    assert conn.execute("select customer_id, v from mlops_features.conc__v1_online order by 1").fetchall() == \
        [(1, newest), (2, newest)]
    assert scalar(conn, "select count(*) from mlops_features.conc__v1") == 2 * sum(len(p) for p in plans)


def _random_history(rng: np.random.Generator, n: int, keys: int, minutes: int) -> pd.DataFrame:
    """Unique (key, event_ts) rows on a whole-minute grid (so spine times hit events exactly)."""
    pairs = rng.choice(keys * minutes, size=n, replace=False)
    return pd.DataFrame({"customer_id": (pairs // minutes).astype("int64"),
                         "event_ts": [T0 + timedelta(minutes=int(m)) for m in pairs % minutes],
                         "val": rng.normal(size=n).round(6)})


def _oracle(spine: pd.DataFrame, hist: pd.DataFrame, col: str, ttl: timedelta | None) -> pd.Series[Any]:
    s = spine.sort_values("ts").reset_index()
    h = hist.rename(columns={"val": col}).sort_values("event_ts")
    merged = pd.merge_asof(s, h[["customer_id", "event_ts", col]], left_on="ts", right_on="event_ts",
                           by="customer_id", direction="backward", allow_exact_matches=True,
                           tolerance=pd.Timedelta(ttl) if ttl else None)
    return merged.set_index("index")[col].sort_index()


def test_point_in_time_matches_merge_asof_oracle(client: pgmlops.Client) -> None:
    fs = client.features
    rng = np.random.default_rng(2026)
    ttls = {"pa": timedelta(minutes=30), "pb": None, "pc": timedelta(minutes=5)}
    hists = {}
    for g, ttl in ttls.items():
        fs.create_group(g, "customer", {"val": "float8"}, ttl=ttl)
        hist = _random_history(rng, 600, 25, 240)
        late = hist.sample(frac=0.2, random_state=1)  # late-arriving rows: older events written last
        fs.write(g, hist.drop(late.index))
        fs.write(g, late)
        hists[g] = hist
    n = 400
    spine = pd.DataFrame({"customer_id": rng.integers(0, 27, n).astype("int64"),
                          "ts": [T0 + timedelta(minutes=int(m)) for m in rng.integers(-5, 260, n)],
                          "label": rng.integers(0, 2, n).astype("int64")})
    # ties and TTL edges: spine rows exactly at an event and exactly ttl after one
    ha = hists["pa"].head(30)
    edge = pd.DataFrame({"customer_id": list(ha["customer_id"]) * 2,
                         "ts": list(ha["event_ts"]) + [t + timedelta(minutes=30) for t in ha["event_ts"]],
                         "label": 0})
    spine = pd.concat([spine, edge], ignore_index=True)
    got = fs.training_set(spine, ["pa:val", "pb:val", "pc:val"], name="pit_oracle")
    assert len(got) == len(spine)
    assert list(got.columns) == ["customer_id", "ts", "label", "pa__val", "pb__val", "pc__val"]
    got = got.sort_values(["customer_id", "ts", "label", "pa__val", "pb__val", "pc__val"]).reset_index(drop=True)
    want = spine.copy()
    for g, ttl in ttls.items():
        want[f"{g}__val"] = _oracle(spine, hists[g], f"{g}__val", ttl).values
    want = want.sort_values(["customer_id", "ts", "label", "pa__val", "pb__val", "pc__val"]).reset_index(drop=True)
    for col in ("pa__val", "pb__val", "pc__val"):
        assert got[col].isna().tolist() == want[col].isna().tolist(), col
        np.testing.assert_allclose(got[col].fillna(0).to_numpy(float), want[col].fillna(0).to_numpy(float))
    assert 0 < got["pa__val"].notna().sum() < len(got)


def test_window_aggregates_point_in_time(client: pgmlops.Client) -> None:
    fs = client.features
    fs.create_group("agg", "customer", {"val": "float8"})
    ref = fs.create_aggregate("agg", "val_sum_1h", "val", "sum", "1 hour")
    cnt = fs.create_aggregate("agg", "n_1h", "*", "count", timedelta(hours=1))
    assert ref == "agg:val_sum_1h" and cnt == "agg:n_1h"
    rng = np.random.default_rng(5)
    hist = _random_history(rng, 300, 5, 300)
    fs.write("agg", hist)
    spine = pd.DataFrame({"rid": np.arange(80, dtype="int64"), "customer_id": rng.integers(0, 5, 80).astype("int64"),
                          "event_ts": [T0 + timedelta(minutes=int(m)) for m in rng.integers(0, 320, 80)]})
    got = fs.training_set(spine, [ref, cnt]).set_index("rid").sort_index()
    for i, row in spine.iterrows():
        h = hist[(hist.customer_id == row.customer_id) & (hist.event_ts <= row.event_ts)
                 & (hist.event_ts > row.event_ts - timedelta(hours=1))]
        assert got.loc[i, "n_1h"] == len(h)
        if len(h):
            assert got.loc[i, "val_sum_1h"] == pytest.approx(h.val.sum())
        else:
            assert pd.isna(got.loc[i, "val_sum_1h"])
    kinds = client.conn.execute("select kind, aggregate from mlops.features where group_name = 'agg' "
                                "and feature = 'val_sum_1h'").fetchone()
    assert kinds == {"kind": "aggregate", "aggregate": "sum(val)"}


def test_training_set_lineage_and_content_hash(conn: psycopg.Connection[Any]) -> None:
    conn.execute("""select mlops.create_feature_group('lin', 'customer', '{"v": "int8"}')""")
    conn.execute("""select mlops.write_features('lin', '[{"customer_id": 1, "event_ts": "2026-01-01", "v": 1},
                                                        {"customer_id": 2, "event_ts": "2026-01-02", "v": 2}]')""")
    spine = "select * from (values (1::int8, '2026-01-03'::timestamptz), (2, '2026-01-03')) s(customer_id, event_ts)"
    assert scalar(conn, "select mlops.create_training_set('lin_a', %s, '{lin:v}')", (spine,)) == "mlops_features.lin_a"
    conn.execute("select mlops.create_training_set('lin_b', %s, '{lin:v}')", (spine,))
    conn.execute("""select mlops.write_features('lin', '[{"customer_id": 1, "event_ts": "2026-01-02", "v": 5}]')""")
    conn.execute("select mlops.create_training_set('lin_c', %s, '{lin:v}')", (spine,))
    rows = {r[0]: r[1:] for r in conn.execute(
        "select training_set, group_name, group_version, row_count, content_hash from mlops.training_set_lineage "
        "where training_set like 'lin_%'")}
    assert rows["lin_a"][:3] == ("lin", 1, 2)
    assert rows["lin_a"][3] == rows["lin_b"][3] != rows["lin_c"][3]
    assert conn.execute("select v from mlops_features.lin_c order by customer_id").fetchall() == [(5,), (2,)]


def test_freshness_alerts(conn: psycopg.Connection[Any]) -> None:
    conn.execute("""select mlops.create_feature_group('fresh', 'customer', '{"v": "int8"}',
                                                      freshness_sla => '1 hour')""")
    conn.execute("insert into mlops_features.fresh__v1 (customer_id, event_ts, v) "
                 "values (1, now() - interval '2 hours', 1)")
    stale = conn.execute("select is_stale, alert_id from mlops.check_freshness() where group_name = 'fresh'").fetchone()
    assert stale is not None and stale[0] is True and stale[1] is not None
    assert scalar(conn, "select count(*) from mlops.alerts where source = 'feature_freshness' and subject = 'fresh' "
                        "and resolved_at is null") == 1
    conn.execute("insert into mlops_features.fresh__v1 (customer_id, event_ts, v) values (2, now(), 1)")
    assert scalar(conn, "select is_stale from mlops.feature_freshness where group_name = 'fresh'") is False
    conn.execute("select * from mlops.check_freshness()")
    assert scalar(conn, "select count(*) from mlops.alerts where source = 'feature_freshness' and subject = 'fresh' "
                        "and resolved_at is null") == 0


def test_validate_features_reports_null_rate(client: pgmlops.Client) -> None:
    client.features.create_group("val", "customer", {"a": "float8", "b": {"type": "int8", "min": 0}})
    client.features.write_rows("val", [{"customer_id": i, "event_ts": "2026-01-01", "a": (None if i % 4 == 0 else i),
                                        "b": i} for i in range(20)])
    report = client.features.validate("val").set_index(["feature", "rule"])
    assert report.loc[("a", "null"), "violations"] == 5
    assert report.loc[("a", "null"), "violation_rate"] == pytest.approx(0.25)
    assert report.loc[("b", "min"), "violations"] == 0 and report.loc[("b", "min"), "row_count"] == 20


def test_notify_on_write(dsn: str, conn: psycopg.Connection[Any]) -> None:
    conn.execute("""select mlops.create_feature_group('noti', 'customer', '{"v": "int8"}', notify => true)""")
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("listen mlops_features")
        conn.execute("insert into mlops_features.noti__v1 (customer_id, event_ts, v) values (42, now(), 1)")
        got = [json.loads(n.payload) for n in listener.notifies(timeout=5, stop_after=1)]
    assert got == [{"group": "noti", "version": 1, "entity": "42"}]


def test_text_entity_and_dataframe_spine_query(client: pgmlops.Client) -> None:
    fs = client.features
    fs.create_group("itm", "item", {"price": "float8"})
    fs.write("itm", pd.DataFrame({"sku": ["a", "b"], "event_ts": [T0, T0], "price": [1.0, 2.0]}))
    df = fs.training_set("select 'b'::text as sku, now() as ts", ["itm:price"])
    assert df["price"].tolist() == [2.0]
    assert fs.freshness().query("group_name == 'itm'")["version"].tolist() == [1]


# --- bad input: clear error, nothing written -------------------------------------------------
BAD_GROUPS = [
    ("x; drop table mlops.entities", '{"a": "int8"}', "22023"),
    ("Bad", '{"a": "int8"}', "22023"),
    ("dup", '[{"name": "a", "type": "int8"}, {"name": "a", "type": "text"}]', "42701"),
    ("dup2", '{"a": "int8", "a": "text"}', "42701"),
    ("badtype", '{"a": "int16"}', "22023"),
    ("badfeat", '{"A b": "int8"}', "22023"),
    ("inj", '{"a\\"; drop table x; --": "int8"}', "22023"),
    ("reserved", '{"event_ts": "int8"}', "42701"),
    ("badrule", '{"a": {"type": "text", "min": 1}}', "22023"),
    ("nofeat", '{}', "22023"),
]


@pytest.mark.parametrize(("name", "features", "state"), BAD_GROUPS)
def test_bad_group_definitions(conn: psycopg.Connection[Any], name: str, features: str, state: str) -> None:
    before = scalar(conn, "select count(*) from mlops.feature_group_versions")
    with pytest.raises(psycopg.Error) as err:
        conn.execute("select mlops.create_feature_group(%s, 'customer', %s::json)", (name, features))
    assert err.value.sqlstate == state, err.value
    assert scalar(conn, "select count(*) from mlops.feature_group_versions") == before


def test_unknown_entity(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.Error) as err:
        conn.execute("""select mlops.create_feature_group('ue', 'nobody', '{"a": "int8"}')""")
    assert err.value.sqlstate == "42704" and "nobody" in str(err.value)


@pytest.fixture(scope="module")
def strict_group(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("""select mlops.create_feature_group('strict', 'customer',
            '{"x": {"type": "float8", "min": 0, "max": 10}, "e": "vector(3)", "c": {"type": "text", "allowed": ["a"]},
              "n": {"type": "int8", "not_null": true}}')""")
    return "strict"


BAD_ROWS = [
    ({"x": "abc", "n": 1}, "22P02", "feature x"),
    ({"e": [1, 2], "n": 1}, "22000", "feature e"),
    ({"x": "NaN", "n": 1}, "23514", "x__finite"),
    ({"x": "-Infinity", "n": 1}, "23514", "x__finite"),
    ({"x": 11, "n": 1}, "23514", "x__max"),
    ({"c": "zz", "n": 1}, "23514", "c__allowed"),
    ({"x": 1}, "23514", "n__not_null"),
    ({"nope": 1, "n": 1}, "42703", "nope"),
]


@pytest.mark.parametrize(("fields", "state", "needle"), BAD_ROWS)
def test_bad_rows_rejected_nothing_written(conn: psycopg.Connection[Any], strict_group: str,
                                           fields: dict[str, Any], state: str, needle: str) -> None:
    rows = [{"customer_id": 1, "event_ts": "2026-01-01", "x": 1, "n": 1},
            {"customer_id": 2, "event_ts": "2026-01-01", **fields}]
    with pytest.raises(psycopg.Error) as err:
        conn.execute("select mlops.write_features('strict', %s::jsonb)", (json.dumps(rows),))
    assert err.value.sqlstate == state and needle in str(err.value) and "strict" in str(err.value), err.value
    assert scalar(conn, "select count(*) from mlops_features.strict__v1") == 0
    assert scalar(conn, "select count(*) from mlops_features.strict__v1_online") == 0


def test_bad_dataframe_write_nothing_written(client: pgmlops.Client, strict_group: str) -> None:
    fs = client.features
    good = {"customer_id": [1, 2], "event_ts": [T0, T0], "n": [1, 2]}
    with pytest.raises(psycopg.errors.CheckViolation, match="x__finite"):
        fs.write("strict", pd.DataFrame({**good, "x": [1.0, float("nan")]}))
    with pytest.raises(psycopg.errors.DataException, match="dimensions"):
        fs.write("strict", pd.DataFrame({**good, "e": [[1.0, 2.0, 3.0], [1.0, 2.0]]}))
    with pytest.raises(PgmlopsError, match="unknown feature"):
        fs.write("strict", pd.DataFrame({**good, "zzz": [1, 2]}))
    with pytest.raises(psycopg.Error, match="unknown feature group"):
        fs.write("nosuch", pd.DataFrame(good))
    row = client.conn.execute("select count(*) as n from mlops_features.strict__v1").fetchone()
    assert row == {"n": 0}


@pytest.mark.parametrize(("entity", "features", "state"), [
    ("customer", ["nosuch:x"], "42704"),
    ("customer", ["strict:nosuch"], "42703"),
    ("customer", ["strict"], "22023"),
    ("customer", ["strict:x", "strict:x"], "42701"),
    ("customer", ["x'; drop table t; --:x"], "22023"),
    ("item", ["strict:x"], "22023"),
    ("nobody", ["strict:x"], "42704"),
])
def test_bad_online_requests(conn: psycopg.Connection[Any], strict_group: str, entity: str, features: list[str],
                             state: str) -> None:
    with pytest.raises(psycopg.Error) as err:
        conn.execute("select * from mlops.get_online_features(%s, '{1}', %s::text[])", (entity, features))
    assert err.value.sqlstate == state, err.value


@pytest.mark.parametrize(("spine", "features", "state"), [
    ("select 1::int8 as customer_id, 5 as label", ["strict:x"], "42703"),  # no timestamp column
    ("select now() as ts, 5 as label", ["strict:x"], "42703"),  # no key column
    ("no_such_table", ["strict:x"], "42P01"),
    ("select 1::int8 as customer_id, now() as ts", ["strict:nosuch"], "42703"),
    ("select 1::int8 as customer_id, now() as ts", ["ghost:x"], "42704"),
])
def test_bad_training_sets(conn: psycopg.Connection[Any], strict_group: str, spine: str, features: list[str],
                           state: str) -> None:
    before = scalar(conn, "select count(*) from mlops.training_sets")
    with pytest.raises(psycopg.Error) as err:
        conn.execute("select mlops.create_training_set('bad_ts', %s, %s::text[])", (spine, features))
    assert err.value.sqlstate == state, err.value
    assert scalar(conn, "select count(*) from mlops.training_sets") == before
    assert scalar(conn, "select to_regclass('mlops_features.bad_ts') is null") is True


def test_training_set_name_injection_and_duplicates(conn: psycopg.Connection[Any], strict_group: str) -> None:
    spine = "select 1::int8 as customer_id, now() as ts"
    with pytest.raises(psycopg.Error) as err:
        conn.execute("select mlops.create_training_set('t; drop table x', %s, '{strict:x}')", (spine,))
    assert err.value.sqlstate == "22023"
    conn.execute("select mlops.create_training_set('dupset', %s, '{strict:x}')", (spine,))
    with pytest.raises(psycopg.Error) as err:
        conn.execute("select mlops.create_training_set('dupset', %s, '{strict:x}')", (spine,))
    assert err.value.sqlstate == "42P07"


def test_reader_and_writer_roles(conn: psycopg.Connection[Any], strict_group: str) -> None:
    conn.execute("do $$ begin if not exists (select from pg_roles where rolname = 'fs_w') then "
                 "create role fs_w; end if; end $$")
    conn.execute("grant mlops_writer to fs_w")
    conn.execute("set role fs_w")
    try:
        conn.execute("""select mlops.write_features('strict', '[{"customer_id": 9, "event_ts": "2026-01-01",
                        "n": 1, "x": 2}]')""")
        got = conn.execute("select values from mlops.get_online_features('customer', '{9}', '{strict:x}')").fetchone()
        assert got == ({"x": 2.0},)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("""select mlops.create_feature_group('nope', 'customer', '{"a": "int8"}')""")
    finally:
        conn.execute("reset role")
        conn.execute("delete from mlops_features.strict__v1; delete from mlops_features.strict__v1_online")


def _sql_online(conn: psycopg.Connection[Any], entity: str, keys: list[Any], features: list[str]) \
        -> list[dict[str, Any]]:
    """mlops.get_online_features (plain SQL, json shape) flattened like the client's rows."""
    out = []
    for key, values, status, event_ts in conn.execute(
            "select entity_key, values, status, event_ts from mlops.get_online_features(%s, %s::text[], %s::text[])",
            (entity, [str(k) for k in keys], features)):
        row: dict[str, Any] = {"entity_key": key}
        for name in values:
            row[name] = values[name]
            row[f"{name}__status"] = status[name]
        row["event_ts"] = event_ts
        out.append(row)
    return out


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Client values as JSON would carry them (vectors as lists)."""
    return {k: (v.to_list() if hasattr(v, "to_list") else v) for k, v in row.items()}


def test_online_client_and_sql_paths_agree(client: pgmlops.Client, conn: psycopg.Connection[Any]) -> None:
    fs = client.features
    fs.create_group("shp", "customer", {"a": "float8", "b": "text", "e": "vector(2)"}, ttl="1 hour")
    fs.create_group("shq", "customer", {"c": "int8", "b": "text"})  # no ttl; b clashes -> shp__b, shq__b
    now = datetime.now(UTC)
    fs.write_rows("shp", [{"customer_id": 1, "event_ts": now.isoformat(), "a": 0.25, "b": "x", "e": [1, 2]},
                          {"customer_id": 2, "event_ts": (now - timedelta(hours=2)).isoformat(), "a": 1.0, "b": "y",
                           "e": [3, 4]}])
    fs.write_rows("shq", [{"customer_id": k, "event_ts": (now - timedelta(days=400)).isoformat(), "c": 10 * k,
                           "b": f"q{k}"} for k in (1, 2, 4)])
    cnt = fs.create_aggregate("shp", "n_1d", "*", "count", "1 day")
    features = ["shp:a", "shp:b", "shp:e", "shq:c", "shq:b", cnt]
    keys = [3, 1, 2, 4, 1]
    want = _sql_online(conn, "customer", keys, features)
    got = [_plain(r) for r in fs.online_raw("customer", keys, features)]
    assert got == want
    for key in keys:  # the one-key statement is another query: same answer
        assert [_plain(r) for r in fs.online_raw("customer", [key], features)] == \
            _sql_online(conn, "customer", [key], features)
    mixed = ["shq:c", "shp:a", cnt, "shp:b", "shq:b", "shp:e"]  # groups interleaved: statuses follow
    assert [_plain(r) for r in fs.online_raw("customer", keys, mixed)] == _sql_online(conn, "customer", keys, mixed)
    for key in keys:
        assert [_plain(r) for r in fs.online_raw("customer", [key], mixed)] == \
            _sql_online(conn, "customer", [key], mixed)
    by_key = {r["entity_key"]: r for r in got}
    assert [by_key[k]["a__status"] for k in "1234"] == ["PRESENT", "EXPIRED", "MISSING", "MISSING"]
    assert [by_key[k]["c__status"] for k in "1234"] == ["PRESENT", "PRESENT", "MISSING", "PRESENT"]
    assert [by_key[k]["n_1d__status"] for k in "1234"] == ["PRESENT", "PRESENT", "MISSING", "MISSING"]
    assert by_key["1"]["shp__b"] == "x" and by_key["2"]["shp__b"] is None and by_key["2"]["shq__b"] == "q2"
    assert by_key["1"]["e"] == [1.0, 2.0] and by_key["1"]["n_1d"] == 1
    df = fs.online("customer", keys, features)
    assert list(df["entity_key"]) == ["3", "1", "2", "4", "1"]
    assert list(df["a__status"]) == ["MISSING", "PRESENT", "EXPIRED", "MISSING", "PRESENT"]
    assert df["e"].iloc[1].tolist() == [1.0, 2.0]


def test_online_plan_cached_without_catalog_queries(client: pgmlops.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = client.features
    fs.create_group("cached", "customer", {"v": "int8"})
    fs.write_rows("cached", [{"customer_id": 1, "event_ts": "2026-01-01", "v": 5}])
    fs.online_raw("customer", [1], ["cached:v"])
    fs.online_raw("customer", [1, 2], ["cached:v"])
    calls: list[str] = []
    real = client.conn.execute

    def spy(query: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(query))
        return real(query, *args, **kwargs)

    monkeypatch.setattr(client.conn, "execute", spy)
    for _ in range(20):
        assert fs.online_raw("customer", [1], ["cached:v"])[0]["v"] == 5
        assert [r["v"] for r in fs.online_raw("customer", [2, 1], ["cached:v"])] == [None, 5]
    assert calls == []


def test_online_one_key_libpq_path(client: pgmlops.Client, dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One-key lookups run the named statement at the libpq level: they survive DEALLOCATE ALL, run
    inside the caller's transaction (seeing its writes), keep working when the plan is rebuilt inside
    a transaction, report errors with their SQLSTATE and leave the connection usable; a connection
    psycopg would open a transaction on first, and a key with a NUL, take the cursor path."""
    fs = client.features
    fs.create_group("fast", "customer", {"v": "int8"}, ttl="1 day")
    fs.write_rows("fast", [{"customer_id": 1, "event_ts": datetime.now(UTC).isoformat(), "v": 7},
                           {"customer_id": 2, "event_ts": "2020-01-01", "v": 8}])
    want = [(r["v"], r["v__status"]) for r in fs.online_raw("customer", [1, 2, 3], ["fast:v"])]
    assert want == [(7, "PRESENT"), (None, "EXPIRED"), (None, "MISSING")]

    def one(k: int) -> tuple[Any, Any]:
        r = fs.online_raw("customer", [k], ["fast:v"])
        assert len(r) == 1 and r[0]["entity_key"] == str(k)
        return r[0]["v"], r[0]["v__status"]

    assert one(1) == want[0]  # first call: cursor path, reads the layout
    with monkeypatch.context() as m:  # from now on one key never touches a cursor
        m.setattr(psycopg.RawCursor, "execute", lambda *a, **k: pytest.fail("cursor path used"))
        assert [one(k) for k in (1, 2, 3)] == want
        client.conn.execute("deallocate all")
        assert [one(k) for k in (3, 2, 1)] == want[::-1]
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            fs.online_raw("customer", ["nope"], ["fast:v"])
    with pytest.raises(psycopg.DataError):  # NUL: psycopg refuses it (libpq would cut the key at it)
        fs.online_raw("customer", ["1\x002"], ["fast:v"])
    with monkeypatch.context() as m:
        m.setattr(psycopg.RawCursor, "execute", lambda *a, **k: pytest.fail("cursor path used"))
        assert one(1) == want[0]
        with client.conn.transaction():
            client.conn.execute("insert into mlops_features.fast__v1 (customer_id, event_ts, v) "
                                "values (3, now(), 9)")
            assert one(3) == (9, "PRESENT")
            with psycopg.connect(dsn, autocommit=True) as other:  # plan rebuilt with the same SQL
                other.execute("""select mlops.create_feature_group('fast_other', 'customer', '{"v": "int8"}')""")
            deadline = time.monotonic() + 5
            while not fs._watch.poller.poll(0):
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert one(1) == want[0]
            assert client.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS  # not aborted
            raise psycopg.Rollback
        assert one(3) == want[2]
    client.conn.autocommit = False
    try:
        assert one(1) == want[0]  # psycopg opens the transaction: cursor path
        assert client.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        client.conn.rollback()
    finally:
        client.conn.autocommit = True


def test_online_one_key_threads_share_a_client(client: pgmlops.Client) -> None:
    """Threads looking up one key each through the same client (one connection, one cached plan)
    each get their own key's row."""
    fs = client.features
    fs.create_group("thr", "customer", {"v": "int8"})
    fs.write_rows("thr", [{"customer_id": k, "event_ts": "2026-01-01", "v": 10 * k} for k in range(50)])
    errors: list[str] = []

    def work(seed: int) -> None:
        try:
            for i in range(300):
                k = (seed * 7919 + i * 13) % 60
                r = fs.online_raw("customer", [k], ["thr:v"])[0]
                if r["entity_key"] != str(k) or r["v"] != (10 * k if k < 50 else None):
                    errors.append(f"key {k}: {r}")
        except Exception as exc:  # a failure in a thread must fail the test, not only warn
            errors.append(f"thread {seed}: {exc!r}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_online_plan_follows_new_versions_and_ttl(client: pgmlops.Client, dsn: str) -> None:
    """Another session makes a new version, then changes the ttl: the client's cached statement is
    rebuilt on NOTIFY mlops_feature_groups, well before any timer would expire."""
    fs = client.features
    fs.create_group("moving", "customer", {"v": "int8"})
    fs.write_rows("moving", [{"customer_id": 1, "event_ts": "2026-01-01", "v": 1}])
    assert fs.online_raw("customer", [1], ["moving:v"])[0]["v"] == 1

    def eventually(check: Any) -> None:
        deadline = time.monotonic() + 5
        while not check():
            assert time.monotonic() < deadline, "cached online query not rebuilt"
            time.sleep(0.02)

    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("""select mlops.create_feature_group('moving', 'customer', '{"v": "int8", "w": "text"}')""")
        other.execute("""select mlops.write_features('moving', '[{"customer_id": 1, "event_ts": "2026-01-02",
                         "v": 2, "w": "two"}]')""")
        eventually(lambda: fs.online_raw("customer", [1], ["moving:v"])[0]["v"] == 2)
        assert fs.online_raw("customer", [1, 3], ["moving:v", "moving:w"])[0]["w"] == "two"
        assert fs.online_raw("customer", [1], ["moving@1:v"])[0]["v"] == 1  # old version still readable
        other.execute("""select mlops.create_feature_group('moving', 'customer', '{"v": "int8", "w": "text"}',
                                                            ttl => '1 day')""")
        eventually(lambda: fs.online_raw("customer", [1], ["moving:v"])[0]["v__status"] == "EXPIRED")
        assert _sql_online(other, "customer", [1], ["moving:v"])[0]["v__status"] == "EXPIRED"


def test_aggregates_carried_to_new_version(conn: psycopg.Connection[Any]) -> None:
    conn.execute("""select mlops.create_feature_group('carry', 'customer', '{"amount": "float8", "kind": "text"}')""")
    conn.execute("select mlops.create_aggregate_feature('carry', 'amount_sum_7d', 'amount', 'sum', '7 days')")
    conn.execute("select mlops.create_aggregate_feature('carry', 'n_1h', '*', 'count', '1 hour')")
    conn.execute("select mlops.create_aggregate_feature('carry', 'kinds_30d', 'kind', 'count', '30 days')")
    warnings: list[str] = []
    conn.add_notice_handler(lambda d: warnings.append(str(d.message_primary)))
    new = scalar(conn, """select mlops.create_feature_group('carry', 'customer',
                           '{"amount": "float8", "extra": "int8"}')""")
    assert new == "mlops_features.carry__v2"
    rows = conn.execute("select version, feature, aggregate, window_seconds from mlops.features "
                        "where group_name = 'carry' and kind = 'aggregate' order by version, feature").fetchall()
    assert rows == [(1, "amount_sum_7d", "sum(amount)", 604800.0), (1, "kinds_30d", "count(kind)", 2592000.0),
                    (1, "n_1h", "count(*)", 3600.0),
                    (2, "amount_sum_7d", "sum(amount)", 604800.0), (2, "n_1h", "count(*)", 3600.0)]
    assert any("kinds_30d" in w and "kind was removed" in w for w in warnings), warnings
    conn.execute("""select mlops.write_features('carry', '[{"customer_id": 1, "event_ts": "2026-01-01 10:00",
                    "amount": 2.5}, {"customer_id": 1, "event_ts": "2026-01-02", "amount": 1}]')""")
    conn.execute("select mlops.create_training_set('carry_set', 'select 1::int8 as customer_id, "
                 "timestamptz ''2026-01-02 00:30'' as ts', '{carry:amount_sum_7d,carry:n_1h}')")
    assert conn.execute("select amount_sum_7d, n_1h from mlops_features.carry_set").fetchall() == [(3.5, 1)]
    # a version where the feature turns text, and one where a feature takes the aggregate's name
    conn.execute("""select mlops.create_feature_group('carry', 'customer', '{"amount": "text", "n_1h": "int8"}')""")
    assert conn.execute("select feature from mlops.features where group_name = 'carry' and version = 3 "
                        "and kind = 'aggregate'").fetchall() == []
    assert any("amount_sum_7d" in w and "no longer numeric" in w for w in warnings), warnings
    assert any("n_1h" in w and "feature of that name" in w for w in warnings), warnings


def test_training_set_spine_table_resolved_in_callers_search_path(client: pgmlops.Client) -> None:
    fs = client.features
    fs.create_group("sp", "customer", {"v": "int8"})
    fs.write_rows("sp", [{"customer_id": 1, "event_ts": "2026-01-01", "v": 3}])
    client.conn.execute("create table public.my_spine as select 1::int8 as customer_id, "
                        "timestamptz '2026-02-01' as event_ts, true as label")
    df = fs.training_set("my_spine", ["sp:v"], name="sp_set")
    assert df[["customer_id", "v"]].values.tolist() == [[1, 3]]
    with pytest.raises(psycopg.Error, match="Schema-qualify"):
        client.conn.execute("select mlops.create_training_set('sp_set2', 'my_spine', '{sp:v}')")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=0, max_size=70))
def test_group_names_property(conn: psycopg.Connection[Any], name: str) -> None:
    """Any string: either a valid identifier (created) or 22023 with nothing written."""
    name = name.replace("\x00", "")
    before = scalar(conn, "select count(*) from mlops.feature_group_versions")
    valid = re.fullmatch(r"[a-z][a-z0-9_]{0,44}", name) is not None
    try:
        conn.execute("""select mlops.create_feature_group(%s, 'customer', '{"a": "int8"}')""", (name,))
    except psycopg.Error as err:
        assert not valid and err.sqlstate == "22023", (name, err)
        assert scalar(conn, "select count(*) from mlops.feature_group_versions") == before
    else:
        assert valid, name


def test_admin_role_creates_groups_and_training_sets(conn: psycopg.Connection[Any]) -> None:
    conn.execute("do $$ begin if not exists (select from pg_roles where rolname = 'fs_admin') then "
                 "create role fs_admin; end if; end $$")
    conn.execute("grant mlops_admin to fs_admin")
    conn.execute("set role fs_admin")
    try:
        conn.execute("""select mlops.create_feature_group('adm', 'customer', '{"v": "int8"}', ttl => '1 day')""")
        conn.execute("""select mlops.write_features('adm', '[{"customer_id": 1, "event_ts": "2026-01-01", "v": 4}]')""")
        conn.execute("select mlops.create_aggregate_feature('adm', 'v_sum', 'v', 'sum', '7 days')")
        conn.execute("select mlops.create_training_set('adm_set', 'select 1::int8 as customer_id, "
                     "timestamptz ''2026-01-01 12:00'' as ts', '{adm:v,adm:v_sum}')")
        assert conn.execute("select v, v_sum from mlops_features.adm_set").fetchall() == [(4, 4)]
        assert scalar(conn, "select count(*) from mlops.check_freshness()") >= 1
    finally:
        conn.execute("reset role")
