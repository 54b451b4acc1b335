"""Drift aggregates: mlops.histogram against numpy, mlops.psi_agg against a numpy PSI on the stored
profile's bins (and against mlops.psi on arrays and the monitor's figure), per group, in parallel
plans, and their bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pytest

Conn = psycopg.Connection[Any]
TOL = 1e-9


def np_hist(values: np.ndarray, edges: np.ndarray) -> list[float]:
    v = values[~np.isnan(values)]
    return [float(x) for x in np.bincount(np.searchsorted(edges, v, "right"), minlength=len(edges) + 1)]


def np_psi(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray) -> float:
    r = np.maximum(np.bincount(np.searchsorted(edges, ref, "right"), minlength=len(edges) + 1) / len(ref), 1e-4)
    c = np.maximum(np.bincount(np.searchsorted(edges, cur, "right"), minlength=len(edges) + 1) / len(cur), 1e-4)
    return float(np.sum((c - r) * np.log(c / r)))


@pytest.fixture(scope="module")
def db(database_factory: Any) -> str:
    rng = np.random.default_rng(11)
    dsn = str(database_factory(prefix="drift_agg"))
    ref = np.round(rng.normal(size=3000), 2)  # ties, some exactly on the bin edges
    cur = np.round(rng.normal(0.2, 1.1, size=2400), 2)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table public.agg_ref (x float8, c text)")
        conn.execute("create table public.agg_cur (seg int, x float8, c text)")
        with conn.cursor().copy("copy public.agg_ref from stdin") as cp:
            for x in ref:
                cp.write_row([float(x), "a"])
        with conn.cursor().copy("copy public.agg_cur from stdin") as cp:
            for i, x in enumerate(cur):
                cp.write_row([i % 4, float(x) + 0.15 * (i % 4), "a"])
            cp.write_row([0, None, "a"])
            cp.write_row([1, float("inf"), "a"])
        conn.execute("analyze public.agg_ref, public.agg_cur")
        conn.execute("select mlops.create_reference_profile(name => 'agg', query => 'select x, c from public.agg_ref')")
    return dsn


def column(conn: Conn, query: str) -> np.ndarray:
    return np.array([r[0] for r in conn.execute(query).fetchall()], dtype=float)


@pytest.mark.parametrize("edges", [[-1.0, 0.0, 0.5, 1.0], [0.0], [-0.5, 0.01, 0.02, 0.03, 2.0]])
def test_histogram_matches_numpy(db: str, edges: list[float]) -> None:
    with psycopg.connect(db) as conn:
        got = conn.execute("select mlops.histogram(x, %s::float8[]) from public.agg_cur", (edges,)).fetchone()
        xs = column(conn, "select x from public.agg_cur where x is not null")
        per_seg = conn.execute("select seg, mlops.histogram(x, %s::float8[]) from public.agg_cur "
                               "group by seg order by seg", (edges,)).fetchall()
        segs = {s: column(conn, f"select x from public.agg_cur where seg = {s} and x is not null") for s in range(4)}
        nothing = conn.execute("select mlops.histogram(x, %s::float8[]) from public.agg_cur where false",
                               (edges,)).fetchone()
    assert got is not None and got[0] == np_hist(xs, np.array(edges))  # +inf lands in the last bin, as numpy
    assert [r[1] for r in per_seg] == [np_hist(segs[s], np.array(edges)) for s in range(4)]
    assert nothing == (None,)


def test_histogram_without_edges_counts_everything(db: str) -> None:
    with psycopg.connect(db) as conn:
        got = conn.execute("select mlops.histogram(x, '{}'::float8[]), count(x) from public.agg_cur").fetchone()
    assert got is not None and got[0] == [float(got[1])]


def test_psi_agg_matches_numpy_and_the_array_function(db: str) -> None:
    with psycopg.connect(db) as conn:
        prof = conn.execute("select columns -> 'x' from mlops.drift_profiles where name = 'agg'").fetchone()
        assert prof is not None
        edges = np.array(prof[0]["edges"], dtype=float)
        ref = column(conn, "select x from public.agg_ref")
        cur = column(conn, "select x from public.agg_cur where x is not null and x <> 'Infinity'")
        got = conn.execute("select mlops.psi_agg(x, 'agg', 'x') from public.agg_cur").fetchone()
        via_arrays = conn.execute("select mlops.psi((select array_agg(x) from public.agg_ref), "
                                  "array_agg(x) filter (where x <> 'Infinity')) from public.agg_cur").fetchone()
        grouped = conn.execute("select seg, mlops.psi_agg(x, 'agg', 'x') from public.agg_cur group by seg order by seg"
                               ).fetchall()
        segs = [column(conn, f"select x from public.agg_cur where seg = {s} and x is not null and x <> 'Infinity'")
                for s in range(4)]
        empty = conn.execute("select mlops.psi_agg(x, 'agg', 'x') from public.agg_cur where x is null").fetchone()
    assert np.allclose(edges, np.unique(np.quantile(ref, np.arange(1, 10) / 10)), rtol=0, atol=1e-12)
    oracle = np_psi(ref, cur, edges)
    assert got is not None and abs(got[0] - oracle) < TOL
    assert via_arrays is not None and abs(via_arrays[0] - oracle) < TOL
    for (seg, value), xs in zip(grouped, segs, strict=True):
        assert abs(value - np_psi(ref, xs, edges)) < TOL, seg
    assert grouped[3][1] > grouped[0][1]  # the planted shift grows with the segment
    assert empty == (None,)


def test_psi_agg_equals_the_monitor_figure_and_runs_in_parallel(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("select mlops.create_drift_monitor(name => 'agg', profile => 'agg', "
                     "query => 'select x, c from public.agg_cur', columns => '{\"x\": \"psi\"}')")
        mon = conn.execute("select statistic from mlops.run_drift_monitor('agg') where column_name = 'x'").fetchone()
        serial = conn.execute("select mlops.psi_agg(x, 'agg', 'x'), mlops.histogram(x, '{0, 1}') from public.agg_cur"
                              ).fetchone()
        for setting in ("parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0",
                        "max_parallel_workers_per_gather = 2"):
            conn.execute(f"set {setting}")
        q = "select mlops.psi_agg(x, 'agg', 'x'), mlops.histogram(x, '{0, 1}') from public.agg_cur"
        plan = "\n".join(r[0] for r in conn.execute("explain " + q).fetchall())
        parallel = conn.execute(q).fetchone()
    assert mon is not None and serial is not None and abs(mon[0] - serial[0]) < TOL
    assert "Partial Aggregate" in plan or "Gather" in plan, plan
    assert parallel is not None and abs(parallel[0] - serial[0]) < TOL and parallel[1] == serial[1]


@pytest.mark.parametrize(("query", "sqlstate", "needle"), [
    ("select mlops.psi_agg(x, 'nope', 'x') from public.agg_cur", "42704", "profile 'nope' does not exist"),
    ("select mlops.psi_agg(x, 'agg', 'y') from public.agg_cur", "42703", "column 'y' is not in reference profile"),
    ("select mlops.psi_agg(x, 'agg', 'c') from public.agg_cur", "22023", "psi_agg needs a numeric column"),
    ("select mlops.histogram(x, '{1, 0}') from public.agg_cur", "22023", "edges must be strictly increasing"),
    ("select mlops.histogram(x, '{1, NaN}') from public.agg_cur", "22023", "edges must be a non-null array"),
    ("select mlops.histogram(x, null) from public.agg_cur", "22023", "edges must be a non-null array"),
    ("select mlops.histogram(x, '{0}') from (values (1.0::float8), ('NaN')) v(x)", "22023", "value contains NaN"),
])
def test_bad_input(db: str, query: str, sqlstate: str, needle: str) -> None:
    with psycopg.connect(db) as conn, pytest.raises(psycopg.Error, match=needle) as err:
        conn.execute(query)
    assert err.value.sqlstate == sqlstate


def test_reader_may_use_the_aggregates(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("grant select on public.agg_cur to mlops_reader")
        conn.execute("set role mlops_reader")
        got = conn.execute("select mlops.psi_agg(x, 'agg', 'x') > 0, mlops.histogram(x, '{0}') is not null "
                           "from public.agg_cur").fetchone()
        conn.execute("reset role")
        conn.execute("create role drift_agg_nobody")
        conn.execute("set role drift_agg_nobody")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select mlops.histogram(1.0, '{0}')")
        conn.execute("reset role")
    assert got == (True, True)
