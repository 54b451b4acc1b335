"""Registry / in-database inference benchmark (issue 4).

A linear model (10 features) under alias production; features stored as float8[] rows.
1. One row: ``select mlops.predict_sql(...)`` / ``mlops.predict(...)`` (PL/Python, numpy) over the row's
   features, vs fetching the row and scoring client-side with numpy (model loaded once).
2. A batch of 10k rows: ``mlops.predict_batch_sql`` / ``mlops.predict_batch`` over ``array_agg`` of the rows,
   vs fetching the 10k rows and scoring client-side; rows/s for each.

    .venv/bin/python -m bench.bench_registry            10k-row batches, 1000 single-row calls
    .venv/bin/python -m bench.bench_registry --quick    fewer repetitions
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pgmlops
import psycopg
from pgmlops.registry import LinearModel
from pgmlops.server import LocalServer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from bench.common import run_cli

WIDTH = 10
ROWS = 100_000
BATCH = 10_000


def _median_seconds(fn: Callable[[], Any], repeat: int, label: str) -> float:
    times = []
    for _ in track(range(repeat), description=label, transient=True):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(quick: bool = False) -> list[dict[str, Any]]:
    console = Console()
    singles, batches = (200, 5) if quick else (1000, 15)
    base = Path(tempfile.mkdtemp(prefix="pgmlops-bench-registry-"))
    base.chmod(0o755)
    server = LocalServer(
        base / "cluster",
        settings=(
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("shared_buffers", "256MB"),
        ),
    )
    server.start()
    rows: list[dict[str, Any]] = []
    try:
        dsn = server.url("postgres")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("create extension pgmlops cascade")
            conn.execute("create extension pgmlops_python cascade")
            conn.execute(f"""create table bench_features as
                select i::int8 as id,
                       array(select random() from generate_series(1, {WIDTH}) where i >= 0)::float8[] as f
                  from generate_series(0, {ROWS - 1}) i""")
            conn.execute("alter table bench_features add primary key (id)")
            conn.execute("analyze bench_features")
        rng = np.random.default_rng(0)
        model = LinearModel(rng.normal(size=WIDTH).tolist(), 0.3, "logistic")
        with pgmlops.connect(dsn) as client:
            reg = client.registry
            reg.register("bench_lin", "classification")
            v = reg.log_version("bench_lin", model, signature={"n_features": WIDTH})
            reg.set_alias("bench_lin", "production", v)
            local = reg.load("bench_lin", "production")
            coef = np.asarray(local.coefficients)
            conn = client.conn
            it = iter(range(10**9))

            def one_in_db(fn: str) -> Callable[[], Any]:
                q = f"select {fn}('bench_lin', 'production', f) from bench_features where id = %s::int8"
                return lambda: conn.execute(q, (next(it) % ROWS,), prepare=True).fetchone()  # type: ignore[arg-type]

            def one_client() -> float:
                row = conn.execute(
                    "select f from bench_features where id = %s::int8", (next(it) % ROWS,), prepare=True
                ).fetchone()
                assert row is not None
                z = float(np.asarray(row["f"]) @ coef + local.intercept)
                return 1.0 / (1.0 + np.exp(-z))

            def batch_in_db(fn: str) -> Callable[[], Any]:
                q = (
                    f"select {fn}('bench_lin', 'production', "
                    "(select pg_catalog.array_agg(f order by id) from bench_features "
                    "where id >= %s::int8 and id < %s::int8)) as p"
                )

                def run() -> None:
                    start = (next(it) * BATCH) % (ROWS - BATCH)
                    out = conn.execute(q, (start, start + BATCH), prepare=True).fetchone()  # type: ignore[arg-type]
                    assert out is not None and len(out["p"]) == BATCH

                return run

            def batch_client() -> None:
                start = (next(it) * BATCH) % (ROWS - BATCH)
                fetched = conn.execute(
                    "select f from bench_features where id >= %s::int8 and id < %s::int8 order by id",
                    (start, start + BATCH),
                    prepare=True,
                ).fetchall()
                x = np.asarray([r["f"] for r in fetched])
                z = x @ coef + local.intercept
                assert len(1.0 / (1.0 + np.exp(-z))) == BATCH

            # agreement check before timing
            x0 = conn.execute("select f from bench_features where id = 7").fetchone()
            assert x0 is not None
            a = conn.execute(
                "select mlops.predict_sql('bench_lin', 'production', %s::float8[]) as a, "
                "mlops.predict('bench_lin', 'production', %s::float8[]) as b",
                (x0["f"], x0["f"]),
            ).fetchone()
            assert a is not None and abs(a["a"] - a["b"]) < 1e-12 and abs(a["a"] - local.predict([x0["f"]])[0]) < 1e-12
            for fn in (one_in_db("mlops.predict_sql"), one_in_db("mlops.predict"), one_client):
                for _ in range(20):
                    fn()  # warm: prepare statements, load the artifact into the session cache
            client_1 = _median_seconds(one_client, singles, "1 row client-side")
            for fn, label in (("mlops.predict_sql", "plain SQL"), ("mlops.predict", "PL/Python numpy")):
                t = _median_seconds(one_in_db(fn), singles, f"1 row {label}")
                rows.append(
                    {
                        "case": f"predict 1 row, {label} vs fetch + numpy",
                        "ours": t * 1e3,
                        "baseline": client_1 * 1e3,
                        "unit": "ms",
                    }
                )
            batch_client()
            client_b = _median_seconds(batch_client, batches, "10k rows client-side")
            for fn, label in (("mlops.predict_batch_sql", "plain SQL"), ("mlops.predict_batch", "PL/Python numpy")):
                batch_in_db(fn)()
                t = _median_seconds(batch_in_db(fn), batches, f"10k rows {label}")
                rows.append(
                    {
                        "case": f"predict 10k rows, {label} vs fetch + numpy",
                        "ours": t * 1e3,
                        "baseline": client_b * 1e3,
                        "unit": "ms",
                    }
                )
                rows.append(
                    {
                        "case": f"batch throughput, {label} vs fetch + numpy",
                        "ours": BATCH / t,
                        "baseline": BATCH / client_b,
                        "unit": "rows/s",
                    }
                )
    finally:
        server.destroy()
    for r in rows:
        r["ours"] = round(r["ours"], 4 if r["unit"] == "ms" else 0)
        r["baseline"] = round(r["baseline"], 4 if r["unit"] == "ms" else 0)
        r["ratio"] = round(r["ours"] / r["baseline"], 2) if r["baseline"] else None
    table = Table(
        title=f"registry inference ({'quick' if quick else 'full'} sizes), medians; ratio = in-db / client-side"
    )
    for col in ("case", "ours", "baseline", "ratio", "unit"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in ("case", "ours", "baseline", "ratio", "unit")))
    console.print(table)
    return rows


if __name__ == "__main__":
    run_cli(main, __doc__)
