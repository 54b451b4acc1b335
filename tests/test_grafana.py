"""dashboards/grafana/pgmlops.json: structure of a Grafana dashboard using the PostgreSQL data
source conventions, and every panel's SQL (macros expanded the way Grafana does) run against
a populated database. A panel whose view is not installed yet is reported by name."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
import pytest

from .bi.fixture_data import HOURS, MODEL, Populated, populate
from .conftest import ROOT

DASHBOARD = ROOT / "dashboards" / "grafana" / "pgmlops.json"
DS_TYPE = "grafana-postgresql-datasource"
REQUIRED_PANELS = {"latency", "error rate", "accuracy", "per variant", "drift share", "freshness"}
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def seconds(interval: str) -> int:
    m = re.fullmatch(r"'?(\d+)([smhd])'?", interval.strip())
    if not m:
        raise ValueError(f"bad Grafana interval {interval!r}")
    return int(m.group(1)) * UNITS[m.group(2)]


def expand(sql: str, start: datetime, end: datetime, variables: dict[str, list[str]], interval: str = "1h") -> str:
    """Expand Grafana's PostgreSQL macros and template variables as the data source does."""
    ts = "'{}'".format
    sql = sql.replace("$__interval", interval)
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)",
                 lambda m: f"{m.group(1).strip()} BETWEEN {ts(start.isoformat())} AND {ts(end.isoformat())}", sql)
    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),([^)]+)\)",
                 lambda m: (f"floor(extract(epoch from {m.group(1).strip()})/{seconds(m.group(2))})"
                            f"*{seconds(m.group(2))} AS \"time\""), sql)
    sql = re.sub(r"\$__timeGroup\(([^,]+),([^)]+)\)",
                 lambda m: (f"floor(extract(epoch from {m.group(1).strip()})/{seconds(m.group(2))})"
                            f"*{seconds(m.group(2))}"), sql)
    sql = sql.replace("$__timeFrom()", ts(start.isoformat())).replace("$__timeTo()", ts(end.isoformat()))
    for name, values in variables.items():
        sql = re.sub(rf"\$\{{{name}(?::csv)?\}}|\${name}\b", ", ".join("'" + v.replace("'", "''") + "'"
                                                                         for v in values), sql)
    leftover = re.findall(r"\$\w+", sql)
    if leftover:
        raise ValueError(f"unexpanded macros/variables {leftover}")
    return sql


def test_expand_macros() -> None:
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    out = expand("select $__timeGroupAlias(time, $__interval), x from t where $__timeFilter(time) and m in ($model)",
                 start, end, {"model": ["a", "b'c"]}, "5m")
    assert out == ("select floor(extract(epoch from time)/300)*300 AS \"time\", x from t where time BETWEEN "
                   "'2026-01-01T00:00:00+00:00' AND '2026-01-02T00:00:00+00:00' and m in ('a', 'b''c')")
    with pytest.raises(ValueError, match="unexpanded"):
        expand("select $__unknown(time)", start, end, {})


def test_dashboard_structure() -> None:
    dash = load()
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    assert {i["name"] for i in dash["__inputs"]} == {"DS_PGMLOPS"}
    titles = [p["title"].lower() for p in dash["panels"]]
    for needed in REQUIRED_PANELS:
        assert any(needed in t for t in titles), f"no panel for {needed!r}: {titles}"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for p in dash["panels"]:
        where = f"panel {p['title']!r}"
        assert p["type"] in {"timeseries", "barchart", "stat", "table"}, where
        assert p["datasource"]["type"] == DS_TYPE, where
        assert set(p["gridPos"]) == {"h", "w", "x", "y"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, where
        assert p["targets"], where
        for t in p["targets"]:
            assert t["rawQuery"] is True and t["format"] in ("time_series", "table"), where
            sql = t["rawSql"]
            assert "$__timeFilter(" in sql, f"{where}: no $__timeFilter"
            assert re.search(r"select\s+(\S+ as time\b|(\w+\.)?time\b|\$__timeGroupAlias\()", sql, re.I), \
                f"{where}: first column is not time"
    for var in dash["templating"]["list"]:
        assert var["datasource"]["type"] == DS_TYPE and var["query"]


def test_dashboard_with_foundation_sdk() -> None:
    """grafana-foundation-sdk's typed dashboard model (a dev dependency) must read our JSON and
    write it back with every panel's title and SQL intact."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models import dashboard as sdk_dashboard

    register_default_plugins()
    source = load()
    board = sdk_dashboard.Dashboard.from_json(source)
    back = json.loads(json.dumps(board, cls=JSONEncoder))
    assert back["title"] == source["title"] and back["uid"] == source["uid"]
    assert [(p["title"], p["type"], [t["rawSql"] for t in p["targets"]]) for p in back["panels"]] == \
        [(p["title"], p["type"], [t["rawSql"] for t in p["targets"]]) for p in source["panels"]]
    assert back["templating"]["list"][0]["query"] == source["templating"]["list"][0]["query"]


@pytest.fixture(scope="module")
def populated(dsn: str) -> Populated:
    with psycopg.connect(dsn, autocommit=True) as c:
        return populate(c)


def run(conn: psycopg.Connection[Any], sql: str, populated: Populated) -> list[tuple[Any, ...]]:
    start = populated.base - timedelta(hours=1)
    end = datetime.now(UTC) + timedelta(hours=1)
    return conn.execute(expand(sql, start, end, {"model": [MODEL]})).fetchall()


def panel_ids() -> list[str]:
    return [p["title"] for p in load()["panels"]]


@pytest.mark.parametrize("title", panel_ids())
def test_panel_sql_runs(conn: psycopg.Connection[Any], populated: Populated, title: str) -> None:
    panel = next(p for p in load()["panels"] if p["title"] == title)
    for target in panel["targets"]:
        try:
            rows = run(conn, target["rawSql"], populated)
        except psycopg.Error as exc:
            pytest.fail(f"panel {title!r} SQL fails: {exc.diag.sqlstate} {exc.diag.message_primary}")
        assert rows, f"panel {title!r} returned no rows on populated data"
        assert all(isinstance(r[0], datetime | float | int | Decimal) for r in rows), \
            f"panel {title!r}: bad time column"


def test_variables_and_annotations_run(conn: psycopg.Connection[Any], populated: Populated) -> None:
    dash = load()
    for var in dash["templating"]["list"]:
        names = [r[0] for r in conn.execute(var["query"]).fetchall()]
        assert MODEL in names
    for ann in dash["annotations"]["list"]:
        rows = run(conn, ann["target"]["rawSql"], populated)
        assert len(rows) == sum(populated.alerts.values())


def panel_rows(conn: psycopg.Connection[Any], populated: Populated, word: str) -> list[tuple[Any, ...]]:
    panel = next(p for p in load()["panels"] if word in p["title"].lower())
    return run(conn, panel["targets"][0]["rawSql"], populated)


def test_predictions_per_variant_values(conn: psycopg.Connection[Any], populated: Populated) -> None:
    rows = panel_rows(conn, populated, "per variant")
    got = Counter[str]()
    for _, metric, value in rows:
        got[metric] += value
    expected = Counter(f"{r['experiment']}/{r['variant']}" for r in populated.predictions)
    assert got == expected


def test_latency_and_error_rate_values(conn: psycopg.Connection[Any], populated: Populated) -> None:
    rows = panel_rows(conn, populated, "latency")
    for h in range(HOURS):
        hour = populated.base + timedelta(hours=h)
        for version, variant in ((1, "control"), (2, "treatment")):
            lat = [r["latency_ms"] for r in populated.predictions
                   if r["variant"] == variant and datetime.fromisoformat(r["created_at"]) < hour + timedelta(hours=1)
                   and datetime.fromisoformat(r["created_at"]) >= hour]
            for q in (50, 95, 99):
                got = [v for t, m, v in rows if t == hour and m == f"{MODEL} v{version} p{q}"]
                assert got == pytest.approx([float(np.percentile(lat, q))]), (hour, version, q)
    errors = panel_rows(conn, populated, "error rate")
    assert sum(v for _, m, v in errors if m == f"{MODEL} v2") == pytest.approx(HOURS * 1 / 10)
    assert all(v == 0 for _, m, v in errors if m == f"{MODEL} v1")


def test_drift_and_freshness_values(conn: psycopg.Connection[Any], populated: Populated) -> None:
    drift = next(p for p in load()["panels"] if "drift" in p["title"].lower())
    assert {m: v for _, m, v in run(conn, drift["targets"][0]["rawSql"], populated)} == populated.drift_share
    fresh = next(p for p in load()["panels"] if "freshness" in p["title"].lower())
    rows = run(conn, fresh["targets"][0]["rawSql"], populated)
    lags = {m: v for t, m, v in rows}
    newest = populated.newest_event["bi_activity"]
    assert set(lags) == {"bi_activity v1"}
    measured_at = rows[0][0]
    assert lags["bi_activity v1"] == pytest.approx((measured_at - newest).total_seconds(), abs=1e-3)
