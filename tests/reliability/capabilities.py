"""A database with every capability populated, through the public SQL API: a model with
versions and aliases (and their history), an entity with a feature group and feature
history, predictions over >= 3 daily partitions with feedback, a running experiment with
recorded assignments, a drift reference profile and monitor, embedding cache rows and a
queued training job. Used by the injection, dump/restore and assignment tests."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

MODEL = "rel_model"
EXPERIMENT = "rel_exp"
ENTITY = "rel_customer"
GROUP = "rel_group"
PROFILE = "rel_profile"
MONITOR = "rel_monitor"
EMBED_MODEL = "rel_embed"
SYNC = "rel_sync"
UNITS = [f"user_{i}" for i in range(200)]
PREDICTION_DAYS = ("2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04")
LINEAR = {"kind": "linear", "coefficients": [0.5, -0.25, 1.0], "intercept": 0.1}


def populate_all(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Fills every capability (idempotent names: call once per database). Returns the figures."""
    ex = conn.execute
    ex("select mlops.register_model(name => %s::text, task => 'classification'::text)", (MODEL,))
    for i in range(3):
        ex("select mlops.create_model_version(model => %s::text, artifact => %s::bytea, flavor => 'linear'::text, "
           "metrics => %s::jsonb)", (MODEL, json.dumps(LINEAR).encode(), Jsonb({"auc": 0.7 + i / 100})))
    for alias, version in (("champion", 1), ("challenger", 2), ("champion", 2), ("staging", 3), ("champion", 3)):
        ex("select mlops.set_alias(model => %s::text, alias => %s::text, version => %s::integer)",
           (MODEL, alias, version))
    ex("select mlops.rollback(model => %s::text, alias => 'champion'::text)", (MODEL,))
    ex("select mlops.submit_training_job(model => %s::text, config => '{\"lr\": 0.1}'::jsonb)", (MODEL,))

    ex("select mlops.create_entity(name => %s::text, key_type => 'int8'::text)", (ENTITY,))
    ex("select mlops.create_feature_group(name => %s::text, entity => %s::text, features => %s::json)",
       (GROUP, ENTITY, '{"amount": {"type": "float8", "min": 0}, "seg": "text", "emb": "vector(3)"}'))
    key = f"{ENTITY}_id"
    for n in range(1, 4):  # feature history: three events per key
        rows = [{key: k, "event_ts": f"2026-01-0{n}T00:00:00Z", "amount": k * n, "seg": f"s{k % 3}",
                 "emb": [k, n, 1]} for k in range(1, 21)]
        ex("select mlops.write_features(%s::text, %s::jsonb)", (GROUP, Jsonb(rows)))

    for d, day in enumerate(PREDICTION_DAYS):
        for i in range(10):
            rid = f"req_{d}_{i}"
            ex("select mlops.log_prediction(model => %s::text, request_id => %s::text, version => %s::integer, "
               "features => %s::jsonb, score => %s::float8, latency_ms => %s::float8, unit_id => %s::text, "
               "created_at => %s::timestamptz)",
               (MODEL, rid, 1 + i % 3, Jsonb({"x": i}), i / 10, 5.0 + i, UNITS[i], f"{day} 12:00:00+00"))
            if i % 2 == 0:
                ex("select mlops.log_feedback(request_id => %s::text, correct => %s::boolean)", (rid, i % 4 == 0))

    ex("select mlops.create_experiment(name => %s::text, model => %s::text, variants => %s::jsonb)",
       (EXPERIMENT, MODEL, Jsonb([{"name": "control", "version": 1, "weight": 0.5},
                                  {"name": "treatment", "version": 2, "weight": 0.5}])))
    ex("select mlops.start_experiment(%s::text)", (EXPERIMENT,))
    ex("select count(*) from mlops.assign_batch(%s::text, %s::text[])", (EXPERIMENT, UNITS))

    ex("create table if not exists public.rel_reference (x float8, c text)")
    ex("insert into public.rel_reference select i / 10.0, 'c' || (i % 4) from generate_series(1, 300) i")
    ex("select mlops.create_reference_profile(name => %s::text, "
       "query => 'select x, c from public.rel_reference'::text)", (PROFILE,))
    ex("select mlops.create_drift_monitor(name => %s::text, profile => %s::text, "
       "query => 'select x, c from public.rel_reference'::text)", (MONITOR, PROFILE))
    ex("select count(*) from mlops.run_drift_monitor(%s::text)", (MONITOR,))

    ex("select mlops.register_embedding_model(name => %s::text, dimension => 3, package => 'no-such-pkg'::text, "
       "artifact_sha256 => %s::text)", (EMBED_MODEL, "0" * 64))
    texts = [f"text {i}" for i in range(25)]
    ex("select mlops.embedding_cache_store(array(select mlops.content_sha256(t) from unnest(%s::text[]) "
       "with ordinality u(t, n) order by n), %s::text[]::vector[], %s::text)",
       (texts, [f"[{i},1,0]" for i in range(1, 26)], EMBED_MODEL))
    # an embedding sync whose texts are all cached (the synthetic model has no package to run)
    ex("create table if not exists public.rel_docs (id integer primary key, body text not null)")
    ex("insert into public.rel_docs select i, 'text ' || i from generate_series(1, 10) i")
    ex("select mlops.create_embedding_sync(name => %s::text, source => 'public.rel_docs'::regclass, "
       "columns => '{body}'::text[], model => %s::text)", (SYNC, EMBED_MODEL))
    ex("select mlops.embedding_sync_step(%s::text, 50)", (SYNC,))
    parts = ex("select count(*) from mlops.prediction_partitions p where exists (select from mlops.predictions x "
               "where x.created_at >= p.lower_bound and x.created_at < p.upper_bound)").fetchone()
    assigned = ex("select count(*) from mlops.experiment_assignments").fetchone()
    synced = ex("select count(*) from mlops.similar(%s::text, '[1,1,0]'::vector, 100)", (SYNC,)).fetchone()
    return {"prediction_partitions_with_rows": parts[0] if parts else 0,
            "assignments": assigned[0] if assigned else 0, "synced_documents": synced[0] if synced else 0}


def invariants(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Cross-table invariants that must survive crash, dump/restore and upgrade."""
    q = conn.execute
    holders = q("select coalesce(max(n), 0) from (select count(*) n from mlops.model_aliases "
                "group by model_id, alias) s").fetchone()
    champion = q("select v.version from mlops.model_aliases a join mlops.model_versions v on v.id = a.version_id "
                 "join mlops.models m on m.id = a.model_id where m.name = %s::text and a.alias = 'champion'",
                 (MODEL,)).fetchone()
    assignments = q("select coalesce(md5(string_agg(e.name || '/' || a.unit_id || '=' || a.variant, ',' "
                    "order by e.name, a.unit_id)), '') from mlops.experiment_assignments a "
                    "join mlops.experiments e on e.id = a.experiment_id").fetchone()
    served = q("select count(*) from mlops.assign_batch(%s::text, %s::text[], false) b "
               "join mlops.experiment_assignments a on a.unit_id = b.unit_id "
               "join mlops.experiments e on e.id = a.experiment_id and e.name = %s::text "
               "join mlops.experiment_variants v on v.experiment_id = e.id and v.position = a.variant "
               "where v.name is distinct from b.variant", (EXPERIMENT, UNITS, EXPERIMENT)).fetchone()
    history = q("select count(*) from mlops.alias_events").fetchone()
    partitions = q("select count(*) from mlops.prediction_partitions").fetchone()
    return {"max_alias_holders": holders[0] if holders else None, "champion": champion[0] if champion else None,
            "assignments_md5": assignments[0] if assignments else None,
            "served_differs_from_recorded": served[0] if served else None,
            "alias_events": history[0] if history else None,
            "prediction_partitions": partitions[0] if partitions else None}
