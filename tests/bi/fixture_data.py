"""Deterministic data for the BI tests (Superset, Grafana): a model with two versions,
predictions of an A/B experiment over the last hours with latencies, errors and feedback,
and alerts. Every part is written through the capabilities' public SQL functions.

``populate`` returns what it wrote so tests compare chart / panel data to it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

MODEL = "bi_churn"
EXPERIMENT = "bi_ab"
VARIANTS = ("control", "treatment")
HOURS = 3


@dataclass
class Populated:
    base: datetime
    alerts: dict[str, int] = field(default_factory=dict)  # severity -> count
    predictions: list[dict[str, Any]] = field(default_factory=list)
    newest_event: dict[str, datetime] = field(default_factory=dict)  # feature group -> newest event_ts
    drift_share: dict[str, float] = field(default_factory=dict)  # monitor -> planted share of drifted columns
    assignments: dict[str, int] = field(default_factory=dict)  # experiment variant -> units assigned


def populate(conn: psycopg.Connection[Any]) -> Populated:
    """Write the fixture data once into an autocommit connection's database."""
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS)
    out = Populated(base=base)
    for i, severity in enumerate(("info", "warning", "warning", "critical")):
        conn.execute("select mlops._raise_alert(%s::text, %s::text, %s::text, %s::text, '{}'::jsonb)",
                     ("drift" if i % 2 else "feature_freshness", f"bi_subject_{i}", severity, f"alert {i}"))
        out.alerts[severity] = out.alerts.get(severity, 0) + 1
    populate_features(conn, out)
    populate_drift(conn, out)
    populate_experiment(conn, out)
    conn.execute("select mlops.register_model(name => %s::text, task => 'classification')", (MODEL,))
    for v in (1, 2):
        conn.execute("select mlops.create_model_version(model => %s::text, artifact => %s::bytea)",
                     (MODEL, f"bi model {v}".encode()))
    rows: list[dict[str, Any]] = []
    for h in range(HOURS):
        for i in range(20):
            variant = VARIANTS[i % 2]
            rows.append({
                "request_id": f"bi_{h}_{i}", "model": MODEL, "version": 1 if variant == "control" else 2,
                "experiment": EXPERIMENT, "variant": variant, "unit_id": f"u{i}",
                "score": round(0.05 * i, 2), "label": "churn" if i % 3 == 0 else "stay",
                "confidence": 0.5 + 0.02 * i, "latency_ms": float(1 + i + 10 * h),
                "error": "timeout" if i == 19 else None,
                "created_at": (base + timedelta(hours=h, minutes=2 * i + 1)).isoformat(),
            })
    conn.execute("select mlops.log_predictions(%s::jsonb)", (json.dumps(rows),))
    for r in rows:
        if r["error"] is None:
            r["actual"] = "churn" if int(r["request_id"].rsplit("_", 1)[1]) % 4 == 0 else "stay"
            conn.execute("select mlops.log_feedback(request_id => %s::text, label => %s::text)",
                         (r["request_id"], r["actual"]))
    out.predictions = rows
    return out


def populate_features(conn: psycopg.Connection[Any], out: Populated) -> None:
    conn.execute("select mlops.create_entity('bi_customer', 'int8', 'BI test customers')")
    conn.execute("""select mlops.create_feature_group('bi_activity', 'bi_customer', '{"spend": "float8"}')""")
    rows = [{"bi_customer_id": k, "event_ts": (out.base + timedelta(hours=k)).isoformat(), "spend": 10.0 * k}
            for k in (1, 2)]
    conn.execute("select mlops.write_features('bi_activity', %s::jsonb)", (json.dumps(rows),))
    out.newest_event["bi_activity"] = out.base + timedelta(hours=2)


def populate_drift(conn: psycopg.Connection[Any], out: Populated) -> None:
    """Column amount is shifted, column plan is not: drift share 1/2."""
    conn.execute("create table public.bi_ref as select (g % 97)::float8 / 97 as amount, "
                 "(array['a','b','c'])[g % 3 + 1] as plan from pg_catalog.generate_series(1, 600) g")
    conn.execute("create table public.bi_cur as select (g % 97)::float8 / 97 + 0.6 as amount, "
                 "(array['a','b','c'])[g % 3 + 1] as plan from pg_catalog.generate_series(1, 600) g")
    conn.execute("select mlops.create_reference_profile(name => 'bi_ref', query => 'select * from public.bi_ref')")
    conn.execute("select mlops.create_drift_monitor(name => 'bi_monitor', profile => 'bi_ref', "
                 "query => 'select * from public.bi_cur')")
    conn.execute("select * from mlops.run_drift_monitor('bi_monitor')")
    out.drift_share["bi_monitor"] = 0.5
    # The planted shift raises the drift capability's own alert: count it with ours.
    for (severity,) in conn.execute("select severity from mlops.alerts where source = 'drift' "
                                    "and subject = 'bi_monitor'").fetchall():
        out.alerts[severity] = out.alerts.get(severity, 0) + 1


def populate_experiment(conn: psycopg.Connection[Any], out: Populated) -> None:
    variants = [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}]
    conn.execute("select mlops.create_experiment('bi_exp', variants => %s::jsonb)", (json.dumps(variants),))
    conn.execute("select mlops.start_experiment('bi_exp')")
    rows = conn.execute("select variant from mlops.assign_batch('bi_exp', %s::text[])",
                        ([f"unit_{i}" for i in range(40)],)).fetchall()
    for (variant,) in rows:
        out.assignments[variant] = out.assignments.get(variant, 0) + 1
