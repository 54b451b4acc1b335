"""``pgmlops demo``: the whole MLOps loop on one database, step by step.

Features with history → point-in-time training set → two model versions trained by a
worker through the job queue → promotion policy, staging → production → an A/B
experiment routing and logging predictions → feedback → a drift monitor over a planted
shift raising an alert → embeddings of support notes and their near-duplicates → the
experiment concluded and the winner promoted → a rollback → HTML reports.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..client import Client
from ..errors import PgmlopsError
from ..install import install, installed_version
from . import data as demo_data
from .train import train

MODEL = "churn"
GROUP = "customer_activity"
FEATURES = ["sessions_7d", "spend_30d", "tickets_30d"]
EXPERIMENT = "churn_ab"
MONITOR = "churn_features"
NOTES = "support_notes"
DEMO_SCHEMA = "pgmlops_demo"  # the demo's own tables (notes and their embeddings); --reset drops it
DEMO_OBJECTS = {
    "entity customer": "select 1 from mlops.entities where name = 'customer'",
    f"model {MODEL}": f"select 1 from mlops.models where name = '{MODEL}'",
    f"schema {DEMO_SCHEMA}": f"select pg_catalog.to_regnamespace('{DEMO_SCHEMA}')::text",
}


@dataclass
class Context:
    client: Client
    out_dir: Path
    customers: int
    data: demo_data.DemoData | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, Path] = field(default_factory=dict)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return list(self.client.conn.execute(query, params).fetchall())

    def one(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        row = self.client.conn.execute(query, params).fetchone()
        return None if row is None else next(iter(row.values()))


def _demo_objects_present(ctx: Context) -> list[str]:
    if installed_version(ctx.client.conn) is None:
        return []
    found = []
    for name, query in DEMO_OBJECTS.items():
        row = ctx.client.conn.execute(query).fetchone()
        if row is not None and any(v is not None for v in row.values()):
            found.append(name)
    return found


def prepare(ctx: Context, reset: bool) -> str:
    """Refuse a database that already holds demo objects unless --reset, which reinstalls pgmlops."""
    conn = ctx.client.conn
    found = _demo_objects_present(ctx)
    if found and not reset:
        raise PgmlopsError(f"the database already holds {', '.join(found)}; run `pgmlops demo --reset` "
                           "to wipe pgmlops data in it and start over")
    if reset:
        conn.execute(f"drop schema if exists {DEMO_SCHEMA} cascade")
        conn.execute("drop extension if exists pgmlops_python cascade")
        conn.execute("drop extension if exists pgmlops cascade")
        conn.execute("drop schema if exists mlops cascade")
        conn.execute("drop schema if exists mlops_features cascade")
    if installed_version(conn) is None:
        install(conn)
    return f"pgmlops {ctx.client.version()} ready" + (" (reset)" if reset else "")


def features(ctx: Context) -> str:
    """Entity, a typed feature group with validation rules, and its history via COPY."""
    ctx.data = demo_data.generate(customers=ctx.customers, notes=max(100, min(2_000, ctx.customers // 25)))
    fs = ctx.client.features
    fs.create_entity("customer", key_type="text", description="A subscriber of the demo service")
    fs.create_group(GROUP, "customer", {
        "sessions_7d": {"type": "int8", "min": 0, "not_null": True},
        "spend_30d": {"type": "float8", "min": 0},
        "tickets_30d": {"type": "int8", "min": 0},
        "plan": {"type": "text", "allowed": list(demo_data.PLANS)},
    }, ttl="30 days", description="Weekly activity snapshots", freshness_sla="1 day")
    written = fs.write(GROUP, ctx.data.activity, progress=False)
    return f"{written:,} feature rows in mlops_features.{GROUP}__v1"


def training_set(ctx: Context) -> str:
    """Point-in-time join of the labelled spine with the feature history."""
    assert ctx.data is not None
    spine = ctx.data.spine.rename(columns={"ts": "event_ts"})
    table = ctx.client.features.create_training_set(
        "churn_train", spine, [f"{GROUP}:{f}" for f in FEATURES], timestamp_column="event_ts")
    ctx.facts["training_set"] = table
    rows = ctx.one(f"select count(*) from {table}")
    return f"{table}: {rows:,} rows, point-in-time correct"


def train_models(ctx: Context) -> str:
    """Two jobs through the queue, run by the demo's worker: a small and a full model."""
    from ..worker import run_worker

    reg = ctx.client.registry
    reg.register(MODEL, task="classification", description="Churn within 30 days")
    label = "churned"
    reg.submit_job(MODEL, {"training_set": ctx.facts["training_set"], "features": FEATURES[:1], "label": label})
    reg.submit_job(MODEL, {"training_set": ctx.facts["training_set"], "features": FEATURES, "label": label})
    done = run_worker(train, ctx.client.dsn, stop_when_empty=True, max_jobs=2)
    aucs = {r["version"]: r["auc"] for r in ctx.sql(
        "select version, (metrics->>'auc')::float8 as auc from mlops.model_versions v "
        "join mlops.models m on m.id = v.model_id where m.name = %s order by version", (MODEL,))}
    ctx.facts["aucs"] = aucs
    return f"{done} jobs done by the worker; AUC " + ", ".join(f"v{v}={a:.3f}" for v, a in aucs.items())


def promote(ctx: Context) -> str:
    """A policy on production (AUC >= 0.6); v1 goes staging → production, v2 becomes challenger."""
    reg = ctx.client.registry
    reg.set_promotion_policy(MODEL, "production", [{"kind": "metric", "metric": "auc", "min": 0.6},
                                                   {"kind": "no_open_drift_alert"}])
    reg.set_alias(MODEL, "staging", 1, reason="demo: first candidate")
    refused = ""
    try:
        reg.set_alias(MODEL, "production", 1, reason="demo: ship v1")
    except Exception as exc:  # the policy may refuse a weak model; show it and force with a reason
        refused = f" (policy refused: {str(exc).splitlines()[0][:60]}…; forced)"
        reg.set_alias(MODEL, "production", 1, reason="demo: forced over policy", force=True)
    reg.set_alias(MODEL, "challenger", 2, reason="demo: full-feature model")
    return "production = v1, challenger = v2" + refused


def embeddings(ctx: Context) -> str:
    """Support notes synced into embeddings by trigger + worker; near-duplicates clustered."""
    assert ctx.data is not None
    conn = ctx.client.conn
    conn.execute(f"create schema {DEMO_SCHEMA}")
    conn.execute(f"create table {DEMO_SCHEMA}.{NOTES} (note_id bigint primary key, customer_id text not null, "
                 "body text not null)")
    with conn.cursor().copy(f"copy {DEMO_SCHEMA}.{NOTES} (note_id, customer_id, body) from stdin") as copy:
        for row in ctx.data.notes.itertuples(index=False):
            copy.write_row((row.note_id, row.customer_id, row.body))
    emb = ctx.client.embeddings
    emb.create_sync(NOTES, f"{DEMO_SCHEMA}.{NOTES}", columns=["body"], metadata_columns=["customer_id"])
    embedded = emb.work(NOTES, batch_size=64)
    clusters = emb.dedupe(NOTES, threshold=0.9)
    sizes = pd.DataFrame(clusters)
    n_clusters = 0 if sizes.empty else int(sizes["cluster_id"].nunique())
    ctx.facts["duplicate_clusters"] = n_clusters
    example = ""
    if not sizes.empty:
        first = [k["note_id"] for k in sizes[sizes["cluster_id"] == sizes["cluster_id"].iloc[0]]["key"].tolist()[:2]]
        bodies = [ctx.one(f"select body from {DEMO_SCHEMA}.{NOTES} where note_id = %s::bigint", (k,)) for k in first]
        example = f"; e.g. {bodies[0]!r} ≈ {bodies[1]!r}" if len(bodies) == 2 else ""
    return f"{embedded:,} notes embedded, {n_clusters} near-duplicate clusters at 0.90{example}"


def experiment(ctx: Context) -> str:
    """Champion (production) vs challenger, 50/50 on customers; the newest activity (with a
    planted shift) arrives, units are assigned, scored in the database and logged."""
    assert ctx.data is not None
    current = ctx.data.current
    ctx.client.features.write(GROUP, current, progress=False)
    conn = ctx.client.conn
    conn.execute(
        "select mlops.create_experiment(name => %s::text, model => %s::text, variants => %s::jsonb, "
        "unit => 'customer_id', primary_metric => 'accuracy', seed => %s::text)",
        (EXPERIMENT, MODEL, json.dumps([{"name": "control", "alias": "production", "weight": 0.5},
                                        {"name": "challenger", "alias": "challenger", "weight": 0.5}]),
         EXPERIMENT))
    conn.execute("select mlops.start_experiment(%s::text)", (EXPERIMENT,))
    units = current["customer_id"].tolist()
    assigned = pd.DataFrame(ctx.sql("select unit_id, variant from mlops.assign_batch(%s::text, %s::text[])",
                                    (EXPERIMENT, units)))
    versions = {r["name"]: r["version"] for r in ctx.sql(
        "select v.name, coalesce(v.version, mv.version) as version from mlops.experiment_variants v "
        "join mlops.experiments e on e.id = v.experiment_id "
        "left join mlops.model_aliases a on a.model_id = e.model_id and a.alias = v.alias "
        "left join mlops.model_versions mv on mv.id = a.version_id where e.name = %s", (EXPERIMENT,))}
    frame = current.merge(assigned, left_on="customer_id", right_on="unit_id")
    logged = []
    for variant, rows in frame.groupby("variant"):
        version = int(versions[str(variant)])
        inputs = ctx.one("select signature->'inputs' from mlops.model_versions v join mlops.models m "
                         "on m.id = v.model_id where m.name = %s and v.version = %s", (MODEL, version))
        matrix = rows[list(inputs)].to_numpy(dtype=float).tolist()
        t0 = time.perf_counter()
        scores = ctx.one("select mlops.predict_batch_sql(%s::text, %s::text, %s::float8[])",
                         (MODEL, str(version), matrix))
        per_row_ms = (time.perf_counter() - t0) * 1000 / max(len(rows), 1)
        logged.append(pd.DataFrame({
            "model": MODEL, "version": version, "alias": "production" if variant == "control" else "challenger",
            "request_id": [f"demo-{u}" for u in rows["customer_id"]], "unit_id": rows["customer_id"].to_numpy(),
            "experiment": EXPERIMENT, "variant": str(variant), "score": scores,
            "label": ["churn" if s > 0.5 else "stay" for s in scores],
            "confidence": [max(s, 1 - s) for s in scores], "latency_ms": per_row_ms,
        }))
    predictions = pd.concat(logged, ignore_index=True)
    ctx.facts["predictions"] = predictions
    n = ctx.client.predictions.log_many(predictions, progress=False)
    split = predictions["variant"].value_counts().to_dict()
    return f"{n:,} predictions logged via COPY; " + ", ".join(f"{k}={v:,}" for k, v in sorted(split.items()))


def feedback(ctx: Context) -> str:
    """Ground truth arrives later: did the customer churn? (drawn from the true model)"""
    assert ctx.data is not None
    cur = ctx.data.current.set_index("customer_id")
    preds: pd.DataFrame = ctx.facts["predictions"]
    rng = np.random.default_rng(11)
    c = cur.loc[preds["unit_id"]]
    p = 1 / (1 + np.exp(-demo_data.churn_logit(c["sessions_7d"].to_numpy(), c["spend_30d"].to_numpy(),
                                               c["tickets_30d"].to_numpy(), (c["plan"] == "pro").to_numpy(float))))
    churned = rng.random(len(p)) < p
    correct = (preds["score"].to_numpy() > 0.5) == churned
    with ctx.client.conn.cursor() as cur_:
        cur_.executemany(
            "select mlops.log_feedback(request_id => %s::text, label => %s::text, correct => %s::boolean, "
            "reward => %s::float8)",
            [(r, "churn" if y else "stay", bool(ok), float(ok))
             for r, y, ok in zip(preds["request_id"], churned, correct, strict=True)])
    by_variant = pd.DataFrame({"variant": preds["variant"], "ok": correct}).groupby("variant")["ok"].mean()
    return f"{len(p):,} outcomes; accuracy " + ", ".join(f"{k}={v:.3f}" for k, v in by_variant.items())


def drift(ctx: Context) -> str:
    """Reference profile of the history, a monitor over the last 7 days, run: the shift alerts."""
    assert ctx.data is not None
    conn = ctx.client.conn
    start = ctx.data.activity["event_ts"].min()
    cols = [*FEATURES, "plan"]
    conn.execute(
        "select mlops.create_reference_profile(name => 'churn_reference', feature_group => %s::text, "
        "window_start => %s::timestamptz, window_end => %s::timestamptz, columns => %s::text[])",
        (GROUP, start, start + pd.Timedelta(days=60), cols))
    conn.execute(
        "select mlops.create_drift_monitor(name => %s::text, profile => 'churn_reference', "
        "feature_group => %s::text, time_window => '7 days', about_model => %s::text)", (MONITOR, GROUP, MODEL))
    results = ctx.sql("select column_name, method, statistic, drifted from mlops.run_drift_monitor(%s::text)",
                      (MONITOR,))
    drifted = [r["column_name"] for r in results if r["drifted"]]
    alerts = ctx.one("select count(*) from mlops.alerts where source = 'drift' and resolved_at is null")
    ctx.facts["drifted"] = drifted
    return f"{len(drifted)}/{len(results)} columns drifted ({', '.join(drifted)}); open drift alerts: {alerts}"


def rollback(ctx: Context) -> str:
    """An incident: production rolls back to the previous version in one call, then forward again."""
    reg = ctx.client.registry
    before = reg.get_version(MODEL, "production").version
    back = reg.rollback(MODEL, "production", reason="demo: incident drill")
    reg.set_alias(MODEL, "production", before, reason="demo: incident resolved, roll forward")
    moves = ctx.one("select count(*) from mlops.alias_history where model = %s and alias = 'production'", (MODEL,))
    return f"production v{before} → v{back} (rollback) → v{before}; {moves} moves in alias_history"


def conclude(ctx: Context) -> str:
    """The drift alert is acknowledged (the policy blocks promotions while it is open), then the
    experiment is concluded: the significant winner moves to production through the registry."""
    conn = ctx.client.conn
    blocked = ""
    try:
        with conn.transaction():
            conn.execute("select mlops.conclude_experiment(experiment => %s::text, promote => true, "
                         "alias => 'production')", (EXPERIMENT,))
    except Exception as exc:
        blocked = f"first attempt refused ({str(exc).splitlines()[0][:70]}…); "
    if blocked:
        conn.execute("select mlops.resolve_alerts('drift', %s::text)", (MONITOR,))
        conn.execute("select mlops.conclude_experiment(experiment => %s::text, promote => true, "
                     "alias => 'production', reason => 'drift reviewed: shift in engagement is real')",
                     (EXPERIMENT,))
    row = ctx.sql("select winner, promoted_version from mlops.experiments where name = %s", (EXPERIMENT,))[0]
    prod = ctx.client.registry.get_version(MODEL, "production").version
    return f"{blocked}winner {row['winner']} (v{row['promoted_version']}); production = v{prod}"


def reports(ctx: Context) -> str:
    """Self-contained HTML reports: drift, model, experiment."""
    from ..report_registry import experiment_report_html, model_report_html

    out = ctx.out_dir
    out.mkdir(parents=True, exist_ok=True)
    ctx.client.drift.report(MONITOR, out / "drift.html")
    (out / "model.html").write_text(model_report_html(ctx.client, MODEL))
    (out / "experiment.html").write_text(experiment_report_html(ctx.client, EXPERIMENT))
    ctx.reports = {"drift": out / "drift.html", "model": out / "model.html", "experiment": out / "experiment.html"}
    return ", ".join(str(p) for p in ctx.reports.values())
