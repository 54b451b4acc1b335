"""A/B experiment benchmarks (issue 6), side by side in one run:

1. assign_batch of N new unit ids without recording (GrowthBook v2 bucketing) vs the growthbook
   Python SDK's hash + chooseVariation on the same ids (assignments/s);
2. assign_batch recording N first exposures vs a bare INSERT ... SELECT of the same rows (assignments/s);
3. assign_batch of the same N ids again (all sticky: lookups only) vs the bare INSERT;
   and the Python client's ``experiments.assign_batch`` of N new ids, every variant back in a DataFrame;
   cases 1-3 also per second of server CPU (the backend's /proc stat): steadier on a shared machine.
   With plpython3u available they run with pgmlops_python installed (numpy hashing), and cases 1-2
   also in a second database holding only pgmlops (the SQL-only path; same run, same baseline);
4. single ``mlops.assign`` round trip, new and already assigned unit, vs a bare ``select 1`` (median per call).

Every rep does the same work from the same start: new ids into a fresh experiment with the
assignments table emptied, and into the emptied bare table; the id array goes in binary on both
sides. Medians over the reps (3 at full size).

    .venv/bin/python -m bench.bench_experiments [--quick]
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import pgmlops
import psycopg
from growthbook.core import chooseVariation, gbhash, getBucketRanges
from rich.console import Console
from rich.progress import track

from bench.common import FAST_SETTINGS, bench_server, print_rows, run_cli

ACCEL = "mlops._gb_assign_py(text, text[], float8[], text, integer, integer, bigint[], integer[])"
VARIANTS = '[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}]'


def setup(dsn: str, python: bool) -> bool:
    """pgmlops (and pgmlops_python when asked and plpython3u exists) in the database; True when the
    numpy accelerator of assign_batch is installed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists pgmlops cascade")
        if python and conn.execute("select exists (select from pg_available_extensions where name = 'plpython3u')"
                                   ).fetchone() == (True,):
            conn.execute("create extension if not exists pgmlops_python cascade")
        conn.execute("create table bench_bare (experiment_id bigint, unit_id text collate \"C\", variant integer,"
                     " assigned_at timestamptz not null default now(), primary key (experiment_id, unit_id))")
        return conn.execute("select pg_catalog.to_regprocedure(%s) is not null", (ACCEL,)).fetchone() == (True,)


def experiment(conn: psycopg.Connection[Any], name: str) -> str:
    conn.execute("select mlops.create_experiment(%s::text, variants => %s::jsonb)", (name, VARIANTS))
    conn.execute("select mlops.start_experiment(%s::text)", (name,))
    return name


def backend_cpu(conn: psycopg.Connection[Any]) -> float:
    """CPU seconds used so far by the connection's server process (local cluster; 0 if unreadable):
    a rate per backend CPU second is far less disturbed by other load on a shared machine than wall time."""
    pid = conn.info.backend_pid
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(conn: psycopg.Connection[Any], query: str, params: Any, cpu: dict[str, list[float]], name: str) -> float:
    before = backend_cpu(conn)
    started = time.perf_counter()
    conn.execute(query, params).fetchall()
    elapsed = time.perf_counter() - started
    cpu.setdefault(name, []).append(backend_cpu(conn) - before)
    return elapsed


def sdk_rate(ids: list[str]) -> float:
    ranges = getBucketRanges(2, 1.0, [0.5, 0.5])
    started = time.perf_counter()
    for u in ids:
        n = gbhash("bench_ab", u, 2)
        chooseVariation(n if n is not None else -1.0, ranges)
    return len(ids) / (time.perf_counter() - started)


def row(case: str, ours: float, baseline: float, unit: str) -> dict[str, Any]:
    return {"case": case, "ours": round(ours, 1), "baseline": round(baseline, 1),
            "ratio": round(ours / baseline, 2) if baseline else None, "unit": unit}


def run_reps(dsn: str, n: int, reps: int, main: bool, tag: str) -> tuple[dict[str, list[float]],
                                                                        dict[str, list[float]]]:
    """Wall rates and backend CPU seconds per case over the reps (same work every rep)."""
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    with psycopg.connect(dsn, autocommit=True) as conn, pgmlops.connect(dsn) as client:
        for rep in track(range(reps), description=f"assign_batch ({tag})"):
            ids = [f"user-{rep}-{i}" for i in range(n)]
            # the same starting point every rep, on both sides: no assignment recorded yet (the bare
            # table is emptied below), so earlier reps' rows do not change the buffer pressure
            conn.execute("truncate mlops.experiment_assignments")
            name = experiment(conn, f"bench_{tag}_{rep}")
            cases = [("compute", f"select count(variant) from mlops.assign_batch('{name}', %b::text[], false)"),
                     ("record", f"select count(variant) from mlops.assign_batch('{name}', %b::text[])")]
            if main:
                cases.append(("sticky", f"select count(variant) from mlops.assign_batch('{name}', %b::text[])"))
            for key, query in cases:
                wall.setdefault(key, []).append(n / timed(conn, query, (ids,), cpu, key))
            if main:  # the baseline, once per rep; one result row, like ours
                conn.execute("truncate bench_bare")
                wall.setdefault("bare", []).append(n / timed(
                    conn, "with i as (insert into bench_bare (experiment_id, unit_id, variant)"
                          " select 1, u, 0 from unnest(%b::text[]) u returning 1) select count(*) from i",
                    (ids,), cpu, "bare"))
                # the Python client end to end: every variant back into a DataFrame, from the same start
                conn.execute("truncate mlops.experiment_assignments")
                fresh = experiment(conn, f"bench_{tag}_{rep}_client")
                started = time.perf_counter()
                frame = client.experiments.assign_batch(fresh, ids, chunk_size=n)
                wall.setdefault("client", []).append(n / (time.perf_counter() - started))
                assert len(frame) == n
    return wall, cpu


def bench_batch(server_dsn: str, sql_dsn: str | None, n: int, reps: int, accelerated: bool) -> list[dict[str, Any]]:
    path = "numpy path" if accelerated else "SQL path"
    wall, cpu = run_reps(server_dsn, n, reps, True, "main")
    sdk = [sdk_rate([f"user-{rep}-{i}" for i in range(min(n, 100_000))]) for rep in range(reps)]
    med = {k: statistics.median(v) for k, v in wall.items()}
    bare_wall, bare_cpu = wall["bare"], cpu["bare"]
    rows = [row(f"assign_batch {n:,} ids, compute only ({path}) vs growthbook SDK (Python)", med["compute"],
                statistics.median(sdk), "assignments/s"),
            row(f"assign_batch {n:,} new ids, recorded ({path}) vs bare INSERT", med["record"], med["bare"],
                "assignments/s"),
            row(f"assign_batch {n:,} sticky ids vs bare INSERT", med["sticky"], med["bare"], "assignments/s"),
            row(f"client experiments.assign_batch {n:,} new ids -> DataFrame vs bare INSERT", med["client"],
                med["bare"], "assignments/s"),
            *cpu_rows(n, cpu, path, ("compute", "record", "sticky"))]
    if sql_dsn is not None:
        wall, cpu = run_reps(sql_dsn, n, reps, False, "sql")
        wall["bare"], cpu["bare"] = bare_wall, bare_cpu  # the same run's baseline
        med = {k: statistics.median(v) for k, v in wall.items()}
        rows += [row(f"assign_batch {n:,} ids, compute only (SQL path) vs bare INSERT", med["compute"], med["bare"],
                     "assignments/s"),
                 row(f"assign_batch {n:,} new ids, recorded (SQL path) vs bare INSERT", med["record"], med["bare"],
                     "assignments/s"),
                 *cpu_rows(n, cpu, "SQL path", ("compute", "record"))]
    return rows


def cpu_rows(n: int, cpu: dict[str, list[float]], path: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The same cases per second of server (backend) CPU time, vs the bare INSERT of the same run."""
    if not all(cpu.get(k) and min(cpu[k]) > 0 for k in (*keys, "bare")):
        return []
    rate = {k: n / statistics.median(v) for k, v in cpu.items()}
    label = {"compute": f"compute only ({path})", "record": f"new ids recorded ({path})", "sticky": "sticky ids"}
    return [row(f"assign_batch {n:,} ids, {label[k]} vs bare INSERT, server CPU", rate[k], rate["bare"],
                "assignments/CPU-s") for k in keys]


def bench_single(dsn: str, calls: int) -> list[dict[str, Any]]:
    new, sticky, bare = [], [], []
    with psycopg.connect(dsn, autocommit=True) as conn:
        name = experiment(conn, "bench_single")
        conn.execute("select 1", prepare=True)
        for i in track(range(calls), description="single assign"):
            started = time.perf_counter()
            conn.execute("select mlops.assign(%s::text, %s::text)", (name, f"u{i}"), prepare=True).fetchone()
            new.append(time.perf_counter() - started)
            started = time.perf_counter()
            conn.execute("select 1", prepare=True).fetchone()
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            conn.execute("select mlops.assign(%s::text, %s::text)", (name, f"u{i // 2}"), prepare=True).fetchone()
            sticky.append(time.perf_counter() - started)
    return [row("single assign (new unit) round trip vs select 1", statistics.median(new) * 1e6,
                statistics.median(bare) * 1e6, "µs/call"),
            row("single assign (assigned unit) round trip vs select 1", statistics.median(sticky) * 1e6,
                statistics.median(bare) * 1e6, "µs/call")]


def main(quick: bool = False) -> list[dict[str, Any]]:
    console = Console()
    rows: list[dict[str, Any]] = []
    with bench_server("exp", (*FAST_SETTINGS, ("max_connections", "20"))) as server:
        dsn = server.url()
        accelerated = setup(dsn, python=True)
        sql_dsn = None
        if accelerated:  # the SQL-only path side by side, in a database without pgmlops_python
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("create database bench_sql")
            sql_dsn = server.url("bench_sql")
            setup(sql_dsn, python=False)
        n, reps = (100_000, 3) if quick else (1_000_000, 3)
        rows += bench_batch(dsn, sql_dsn, n, reps, accelerated)
        rows += bench_single(dsn, 500 if quick else 3000)
    print_rows("experiments (medians)", rows, console)
    return rows


if __name__ == "__main__":
    run_cli(main, __doc__)
