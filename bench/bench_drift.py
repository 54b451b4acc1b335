"""Drift benchmark at the issue's scale: a full monitor run in the database (one scan of the current
data against a stored reference profile, plus the vector sample and the HNSW nearest-neighbour
probes) versus fetching reference and current data into numpy (COPY, the fastest client path) and
computing the same statistics with scipy/numpy (what an in-memory tool such as Evidently does),
plus the profile creation time.

Data: N reference + N current rows, each row 10 numeric + 3 categorical columns and a 384-d
embedding column (mixtures of topic centres; the current side has half of its numeric and
categorical columns shifted and half of its embeddings from new topics). N defaults to the
issue's 1,000,000 (``make bench``); ``--rows`` or PGMLOPS_BENCH_DRIFT_ROWS change it, ``--quick``
uses 20,000. One run of each side by default (the issue asks for one run; at 1M a run takes
minutes); ``--repeat K`` runs each timed part K times and prints medians.

    .venv/bin/python -m bench.bench_drift [--quick] [--rows N] [--repeat K]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from rich.console import Console
from rich.progress import Progress
from scipy import stats
from scipy.spatial.distance import jensenshannon

from bench.common import bench_server, print_rows

NUM = [f"x{i}" for i in range(1, 11)]
CAT = ["c1", "c2", "c3"]
DIM = 384
NN_REFERENCE = 10_000  # create_reference_profile's nn_reference default
NN_PROBES = 1_000  # mlops._drift_nn_probes()
MMD_SAMPLE = 500  # create_reference_profile's vector_sample default
SETTINGS = (("fsync", "off"), ("synchronous_commit", "off"), ("full_page_writes", "off"), ("work_mem", "256MB"),
            ("maintenance_work_mem", "512MB"), ("max_parallel_workers_per_gather", "0"))


def _make_data(conn: psycopg.Connection[Any], n: int) -> None:
    """Vectors are sums of a topic centre and two of 4,096 random pool vectors (distinct per row)."""
    conn.execute(f"create table public.pool as select i, (select array_agg(random() - 0.5) "
                 f"from generate_series(1, {DIM}) k where i >= 0)::vector as v from generate_series(0, 4095) i")
    conn.execute(f"create table public.centers as select i, (select array_agg((random() - 0.5) * 3) "
                 f"from generate_series(1, {DIM}) k where i >= 0)::vector as v from generate_series(0, 11) i")
    nums = ", ".join(f"(random() * {i} + {0.3 if (i <= 5) else 0} * s.shift)::float8 as x{i}" for i in range(1, 11))
    cats = ", ".join(f"(array['a','b','c','d'])[1 + floor(pow(random(), 1 + s.shift * {j % 2}) * 4)::int] as c{j}"
                     for j in range(1, 4))
    for side, shift in (("ref", 0), ("cur", 1)):
        topic = "g % 8" if shift == 0 else "case when g % 2 = 0 then g % 8 else 8 + g % 4 end"
        conn.execute(f"create table public.{side} as select {nums}, {cats}, (c.v + p1.v + p2.v)::vector({DIM}) as e "
                     f"from generate_series(1, {n}) g cross join (select {shift}::float8 as shift) s "
                     f"join public.centers c on c.i = {topic} "
                     f"join public.pool p1 on p1.i = (g + {17 * shift}) % 4096 "
                     f"join public.pool p2 on p2.i = (g / 4096 + g * {7 + 6 * shift}) % 4096")
        conn.execute(f"analyze public.{side}")


def _fetch(conn: psycopg.Connection[Any], side: str) -> tuple[pd.DataFrame, np.ndarray]:
    """COPY out: the tabular columns as CSV into pandas, the vectors in pgvector's binary format."""
    buf = io.BytesIO()
    with conn.cursor().copy(f"copy (select {', '.join(NUM + CAT)} from public.{side}) to stdout (format csv)") as cp:
        for chunk in cp:
            buf.write(chunk)
    buf.seek(0)
    frame = pd.read_csv(buf, names=NUM + CAT, dtype={c: "float64" for c in NUM} | {c: "str" for c in CAT})
    raw = bytearray()
    with conn.cursor().copy(f"copy (select e from public.{side}) to stdout (format binary)") as cp:
        for chunk in cp:
            raw += chunk
    # header 19 bytes, then per row: int16 field count, int32 length, int16 dim, int16 unused, float4[dim]
    row = np.dtype([("f", ">i2"), ("len", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("v", ">f4", (DIM,))])
    body = np.frombuffer(raw, dtype=row, count=(len(raw) - 19 - 2) // row.itemsize, offset=19)
    return frame, body["v"].astype(np.float32)


def _mmd(x: np.ndarray, y: np.ndarray) -> float:
    z = np.vstack([x, y]).astype(np.float64)
    sq = (z * z).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0)
    sigma = float(np.median(np.sqrt(d2[np.triu_indices(len(z), 1)]))) or 1.0
    k = np.exp(-d2 / (2 * sigma * sigma))
    n = len(x)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    return float((kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - n) / (n * (n - 1)) - 2 * kxy.mean())


def _nn_cosine(probes: np.ndarray, refs: np.ndarray, exclude_self: bool) -> np.ndarray:
    """Exact nearest-reference cosine distance of each probe (brute force, one matrix product)."""
    p = probes / np.linalg.norm(probes, axis=1, keepdims=True)
    r = refs / np.linalg.norm(refs, axis=1, keepdims=True)
    d = 1.0 - p @ r.T
    if exclude_self:  # probes are the first rows of refs
        d[np.arange(len(p)), np.arange(len(p))] = np.inf
    return np.asarray(d.min(axis=1))


def _numpy_scipy(conn: psycopg.Connection[Any]) -> int:
    """Fetch reference and current into numpy, compute what the monitor computes."""
    (rf, re_), (cf, ce) = _fetch(conn, "ref"), _fetch(conn, "cur")
    out: list[float] = []
    for col in NUM:
        r, c = rf[col].to_numpy(), cf[col].to_numpy()
        out.append(stats.wasserstein_distance(r, c) / r.std())
        edges = np.unique(np.quantile(r, np.arange(1, 10) / 10))
        ra = np.maximum(np.bincount(np.searchsorted(edges, r, "right")) / len(r), 1e-4)
        ca = np.maximum(np.bincount(np.searchsorted(edges, c, "right"), minlength=len(ra)) / len(c), 1e-4)
        out.append(float(np.sum((ca - ra) * np.log(ca / ra))))
    for col in CAT:
        counts = pd.concat([rf[col].value_counts().rename("r"), cf[col].value_counts().rename("c")], axis=1).fillna(0)
        out.append(float(jensenshannon(counts["r"], counts["c"])))
    rmean, cmean = re_.mean(0, dtype=np.float64), ce.mean(0, dtype=np.float64)
    rstd = re_.std(0, dtype=np.float64)
    out.append(float(1 - rmean @ cmean / np.linalg.norm(rmean) / np.linalg.norm(cmean)))
    out.append(float(np.mean(np.abs(rmean - cmean) >= 0.1 * rstd)))
    rng = np.random.default_rng(0)
    rs = re_[rng.choice(len(re_), min(NN_REFERENCE, len(re_)), replace=False)]
    cs = ce[rng.choice(len(ce), min(NN_PROBES, len(ce)), replace=False)]
    out.append(_mmd(rs[:MMD_SAMPLE], cs[:MMD_SAMPLE]))
    p95 = np.quantile(_nn_cosine(rs[:NN_PROBES], rs, exclude_self=True), 0.95)
    out.append(float(np.mean(_nn_cosine(cs, rs, exclude_self=False) > p95)))
    return len(out)


def _timed(fn: Any, repeat: int) -> float:
    """Median wall time of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(quick: bool = False, rows: int | None = None, repeat: int = 1) -> list[dict[str, Any]]:
    console = Console()
    n = rows or (20_000 if quick else int(os.environ.get("PGMLOPS_BENCH_DRIFT_ROWS", "1000000")))
    with bench_server("drift", SETTINGS) as server:
        with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
            admin.execute("create database bench_drift")
        url = server.url("bench_drift")
        with psycopg.connect(url, autocommit=True) as conn, Progress(console=console, transient=True) as progress:
            task = progress.add_task("drift benchmark", total=4)
            conn.execute("create extension pgmlops cascade")
            conn.execute("create extension pgmlops_python cascade")
            progress.update(task, description=f"generating {n:,} + {n:,} rows")
            _make_data(conn, n)
            progress.advance(task)
            progress.update(task, description="profile creation")
            t_profile = _timed(lambda: conn.execute(
                "select mlops.create_reference_profile(name => 'bench', query => 'select * from public.ref', "
                "replace => true)"), repeat)
            conn.execute("select mlops.create_drift_monitor(name => 'bench', profile => 'bench', "
                         "query => 'select * from public.cur')")
            progress.advance(task)
            progress.update(task, description="in-database monitor run")
            t_db = _timed(lambda: conn.execute("select * from mlops.run_drift_monitor('bench')").fetchall(), repeat)
            progress.advance(task)
            progress.update(task, description="COPY into numpy + scipy")
            with psycopg.connect(url, autocommit=True) as fetch_conn:
                t_np = _timed(lambda: _numpy_scipy(fetch_conn), repeat)
            progress.advance(task)
            drifted = conn.execute("select string_agg(column_name || ':' || method, ' ' order by column_name, method) "
                                   "from mlops.drift_results where drifted and run_id = (select max(id) from "
                                   "mlops.drift_runs)").fetchone()
            nn = conn.execute("select statistic, details -> 'current_vectors', details -> 'reference_vectors' "
                              "from mlops.drift_results where method = 'nn_share' "
                              "order by run_id desc limit 1").fetchone()
    cols = "10 numeric + 3 categorical + 384-d vector"
    out = [
        {"case": f"monitor run: {n:,} vs {n:,} rows ({cols})", "ours": round(t_db, 2), "baseline": round(t_np, 2),
         "ratio": round(t_np / t_db, 2), "unit": "s (baseline: COPY into numpy + scipy)"},
        {"case": f"profile creation: {n:,} rows ({cols})", "ours": round(t_profile, 2), "baseline": "", "ratio": "",
         "unit": "s"},
    ]
    print_rows(f"drift benchmark ({'median of ' + str(repeat) if repeat > 1 else 'one run each'})", out, console)
    console.print(f"drifted: {drifted[0] if drifted else ''}")
    if nn:
        console.print(f"nn_share {nn[0]:.3f} from {nn[1]} current probes against {nn[2]} HNSW-indexed "
                      "reference vectors")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 rows per side")
    parser.add_argument("--rows", type=int, help="rows per side (default 1,000,000 or PGMLOPS_BENCH_DRIFT_ROWS)")
    parser.add_argument("--repeat", type=int, default=1, help="time each part this many times, print medians")
    args = parser.parse_args()
    main(quick=args.quick, rows=args.rows, repeat=args.repeat)
