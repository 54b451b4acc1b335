"""Nearest-neighbour distance drift through the HNSW (cosine) index of the reference set: equal to an
exact numpy brute force on small data, index scans in the plan, planted topic shifts detected and
unshifted samples not, the index kept in step with profiles, roles and bad input."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import psycopg
import pytest

Conn = psycopg.Connection[Any]
PROBES = 1000  # mlops._drift_nn_probes()


def store(conn: Conn, table: str, vectors: np.ndarray) -> None:
    conn.execute(f"drop table if exists public.{table}")
    conn.execute(f"create table public.{table} (e vector({vectors.shape[1]}))")
    with conn.cursor().copy(f"copy public.{table} (e) from stdin") as cp:
        for v in vectors:
            cp.write_row(["[" + ",".join(f"{x:.6f}" for x in v) + "]"])


def topics(rng: np.random.Generator, n: int, which: list[int], dim: int = 16) -> np.ndarray:
    centers = np.random.default_rng(0).normal(size=(6, dim))
    return np.asarray(centers[rng.choice(which, n)] + rng.normal(scale=0.7, size=(n, dim)))


def nn_cosine(probes: np.ndarray, refs: np.ndarray, self_ordinals: np.ndarray | None = None) -> np.ndarray:
    p = probes / np.linalg.norm(probes, axis=1, keepdims=True)
    r = refs / np.linalg.norm(refs, axis=1, keepdims=True)
    d = 1.0 - p.astype(np.float64) @ r.T.astype(np.float64)
    if self_ordinals is not None:
        d[np.arange(len(p)), self_ordinals] = np.inf
    return np.asarray(d.min(axis=1))


def stored(conn: Conn, profile: str) -> tuple[np.ndarray, np.ndarray]:
    rows = conn.execute("select v.ordinal, v.embedding::text from mlops.drift_profile_vectors v "
                        "join mlops.drift_profiles p on p.id = v.profile_id where p.name = %s order by v.ordinal",
                        (profile,)).fetchall()
    return np.array([r[0] for r in rows]), np.array([json.loads(r[1]) for r in rows], dtype=np.float32)


def monitor(conn: Conn, name: str, profile: str, table: str) -> None:
    conn.execute("select mlops.create_drift_monitor(name => %s, profile => %s, query => %s)",
                 (name, profile, f"select e from public.{table}"))


def index_scans(conn: Conn, index: str) -> int:
    conn.execute("select pg_stat_force_next_flush()")
    conn.execute("select pg_stat_clear_snapshot()")
    row = conn.execute("select idx_scan from pg_stat_user_indexes where schemaname = 'mlops' and indexrelname = %s",
                       (index,)).fetchone()
    assert row is not None
    return int(row[0])


def nn_result(conn: Conn, monitor: str) -> tuple[float, bool, dict[str, Any]]:
    row = conn.execute("select statistic, drifted, details from mlops.run_drift_monitor(%s) where method = 'nn_share'",
                       (monitor,)).fetchone()
    assert row is not None
    return float(row[0]), bool(row[1]), row[2]


@pytest.fixture(scope="module")
def db(database_factory: Any) -> str:
    return str(database_factory(prefix="drift_nn"))


def test_matches_exact_brute_force_through_the_index(db: str) -> None:
    """Small data through the HNSW index (counted in pg_stat_user_indexes): p95 and share equal numpy's
    exact brute-force values."""
    rng = np.random.default_rng(3)
    ref = topics(rng, 400, [0, 1])
    ref[7] = 0.0  # a zero vector has no cosine direction: left out of the statistic
    cur = np.vstack([topics(rng, 150, [0, 1]), topics(rng, 100, [2])])
    with psycopg.connect(db, autocommit=True) as conn:
        store(conn, "bf_ref", ref)
        store(conn, "bf_cur", cur)
        conn.execute("select mlops.create_reference_profile(name => 'bf', query => 'select e from public.bf_ref', "
                     "nn_reference => 300)")
        col = conn.execute("select columns -> 'e' from mlops.drift_profiles where name = 'bf'").fetchone()
        assert col is not None
        monitor(conn, "bf", "bf", "bf_cur")
        scans = index_scans(conn, col[0]["nn_index"])
        share, drifted, det = nn_result(conn, "bf")
        assert index_scans(conn, col[0]["nn_index"]) - scans == len(cur)  # one HNSW scan per current vector
        ordinals, vectors = stored(conn, "bf")
    assert col is not None and col[0]["nn_reference"] == 300 and col[0]["nn_metric"] == "cosine"
    assert col[0]["nn_index"].startswith("drift_nn_")
    assert len(ordinals) == 400 and list(ordinals) == list(range(1, 401))  # greatest(vector_sample, nn_reference)
    refs = vectors[:300]
    keep = np.linalg.norm(refs, axis=1) > 0
    probes = np.flatnonzero(keep)[:PROBES]
    masked = refs[keep]
    d_ref = nn_cosine(refs[probes], masked, self_ordinals=np.searchsorted(np.flatnonzero(keep), probes))
    p95 = float(np.quantile(d_ref, 0.95))
    assert abs(col[0]["nn_p95"] - p95) < 1e-6
    exact_share = float(np.mean(nn_cosine(cur.astype(np.float32), masked) > p95))
    assert det["current_vectors"] == len(cur) and det["reference_vectors"] == 300
    assert abs(share - exact_share) < 1e-12
    assert drifted and share > 0.3


def test_plan_uses_the_hnsw_index(db: str) -> None:
    """The statement mlops._drift_nn_exec runs (sorts and sequential scans off) scans the partial HNSW index,
    for the reference's own probes and for a current sample."""
    rng = np.random.default_rng(4)
    with psycopg.connect(db, autocommit=True) as conn:
        store(conn, "ix_ref", topics(rng, 3000, [0, 1]))
        pid = conn.execute("select mlops.create_reference_profile(name => 'ix', query => 'select e from public.ix_ref')"
                           ).fetchone()
        assert pid is not None
        conn.execute("create temp table _drift_cur_sample as select ordinal, embedding as v"
                     " from mlops.drift_profile_vectors where ordinal <= 1000")
        conn.execute("set enable_sort = off")
        conn.execute("set enable_seqscan = off")
        for probes in ("reference", "current"):
            sql = conn.execute("select mlops._drift_nn_sql(%s, 'e', 16, 3000, %s)", (pid[0], probes)).fetchone()
            assert sql is not None
            plan = "\n".join(r[0] for r in conn.execute("explain " + sql[0]).fetchall())
            assert f"Index Scan using drift_nn_{pid[0]}_" in plan, (probes, plan)
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="invalid probes 'x; select 1'"):
            conn.execute("select mlops._drift_nn_sql(%s, 'e', 16, 3000, 'x; select 1')", (pid[0],))


def test_planted_topic_shift_detected_and_unshifted_samples_not(db: str) -> None:
    rng = np.random.default_rng(5)
    with psycopg.connect(db, autocommit=True) as conn:
        store(conn, "ts_ref", topics(rng, 4000, [0, 1, 2]))
        conn.execute("select mlops.create_reference_profile(name => 'ts', query => 'select e from public.ts_ref')")
        shares = []
        for i in range(5):
            store(conn, f"ts_same{i}", topics(rng, 1500, [0, 1, 2]))
            monitor(conn, f"ts_same{i}", "ts", f"ts_same{i}")
            share, drifted, _ = nn_result(conn, f"ts_same{i}")
            assert not drifted, (i, share)
            shares.append(share)
        store(conn, "ts_shift", np.vstack([topics(rng, 1000, [0, 1, 2]), topics(rng, 500, [4, 5])]))
        monitor(conn, "ts_shift", "ts", "ts_shift")
        shifted, drifted, det = nn_result(conn, "ts_shift")
    assert 0.0 < float(np.mean(shares)) < 0.1  # about the 5% a p95 rule lets through
    assert drifted and shifted > 0.3  # a third of the sample comes from unseen topics
    assert det["current_vectors"] == PROBES


def test_index_follows_the_profile(db: str) -> None:
    rng = np.random.default_rng(6)
    with psycopg.connect(db, autocommit=True) as conn:
        store(conn, "ix2_ref", topics(rng, 500, [0]))
        store(conn, "ix2_cur", topics(rng, 300, [0]))

        def indexes() -> list[str]:
            return [r[0] for r in conn.execute(
                "select indexrelid::regclass::text from pg_index "
                "where indrelid = 'mlops.drift_profile_vectors'::regclass "
                "and indexrelid::regclass::text like 'mlops.drift\\_nn\\_%' order by 1").fetchall()]

        before = set(indexes())
        conn.execute("select mlops.create_reference_profile(name => 'ix2', query => 'select e from public.ix2_ref')")
        (first,) = set(indexes()) - before
        conn.execute("select mlops.create_reference_profile(name => 'ix2', query => 'select e from public.ix2_ref', "
                     "nn_reference => 100, replace => true)")  # no monitor yet: a new profile id
        (second,) = set(indexes()) - before
        assert second != first  # the old profile's index was dropped
        monitor(conn, "ix2", "ix2", "ix2_cur")
        conn.execute(f"drop index {second}")  # as after a dump/restore
        _, _, det = nn_result(conn, "ix2")
        assert second in indexes() and det["reference_vectors"] == 100
        assert ("mlops." + det["index"]) == second


def test_admin_builds_the_index_without_owning_the_table(db: str) -> None:
    rng = np.random.default_rng(7)
    with psycopg.connect(db, autocommit=True) as conn:
        store(conn, "adm_ref", topics(rng, 200, [0]))
        conn.execute("grant select on public.adm_ref to mlops_admin")
        conn.execute("set role mlops_admin")
        conn.execute("select mlops.create_reference_profile(name => 'adm', query => 'select e from public.adm_ref')")
        monitor(conn, "adm", "adm", "adm_ref")
        share, drifted, det = nn_result(conn, "adm")
        conn.execute("set role mlops_reader")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select mlops._drift_nn_index(1, 'e', 16, 10)")
        conn.execute("reset role")
    assert det["index"] and not drifted and share < 0.2


@pytest.mark.parametrize("value", [0, 9, 1_000_001, None])
def test_nn_reference_out_of_range(db: str, value: int | None) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        store(conn, "bad_ref", np.ones((3, 4)))
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="nn_reference must be between 10 and 1000000"):
            conn.execute("select mlops.create_reference_profile(name => 'bad', "
                         "query => 'select e from public.bad_ref', nn_reference => %s)", (value,))
        assert conn.execute("select count(*) from mlops.drift_profiles where name = 'bad'").fetchone() == (0,)
