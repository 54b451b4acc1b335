"""A/B experiment benchmarks (issue 6), side by side in one run:

1. assign_batch of N new unit ids without recording (pure GrowthBook v2 bucketing in SQL) vs the
   growthbook Python SDK's hash + chooseVariation on the same ids (assignments/s);
2. assign_batch recording N first exposures vs a bare INSERT ... SELECT of the same rows (assignments/s);
3. assign_batch of the same N ids again (all sticky: lookups only) vs the bare INSERT;
   cases 1-3 also per second of server CPU (the backend's /proc stat): steadier on a shared machine;
4. single ``mlops.assign`` round trip, new and already assigned unit, vs a bare ``select 1`` (median per call).

    .venv/bin/python -m bench.bench_experiments [--quick]
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg
from growthbook.core import chooseVariation, gbhash, getBucketRanges
from rich.console import Console
from rich.progress import track

from bench.common import FAST_SETTINGS, bench_server, print_rows, run_cli

VARIANTS = '[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}]'


def setup(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists pgmlops cascade")
        for name in ("bench_ab", "bench_single"):
            conn.execute("select mlops.create_experiment(%s::text, variants => %s::jsonb)", (name, VARIANTS))
            conn.execute("select mlops.start_experiment(%s::text)", (name,))
        conn.execute("create table bench_bare (experiment_id bigint, unit_id text collate \"C\", variant integer,"
                     " assigned_at timestamptz not null default now(), primary key (experiment_id, unit_id))")


def backend_cpu(conn: psycopg.Connection[Any]) -> float:
    """CPU seconds used so far by the connection's server process (local cluster; 0 if unreadable):
    a rate per backend CPU second is far less disturbed by other load on a shared machine than wall time."""
    pid = conn.info.backend_pid
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CPU: dict[str, list[float]] = {}


def timed(conn: psycopg.Connection[Any], query: str, params: Any, name: str = "") -> float:
    cpu = backend_cpu(conn)
    started = time.perf_counter()
    conn.execute(query, params).fetchall()
    elapsed = time.perf_counter() - started
    if name:
        CPU.setdefault(name, []).append(backend_cpu(conn) - cpu)
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


def bench_batch(dsn: str, n: int, reps: int) -> list[dict[str, Any]]:
    compute, record, sticky, bare, sdk = [], [], [], [], []
    CPU.clear()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for rep in track(range(reps), description="assign_batch"):
            ids = [f"user-{rep}-{i}" for i in range(n)]
            compute.append(n / timed(conn, "select count(variant) from mlops.assign_batch('bench_ab', %s::text[],"
                                           " false)", (ids,), "compute"))
            record.append(n / timed(conn, "select count(variant) from mlops.assign_batch('bench_ab', %s::text[])",
                                    (ids,), "record"))
            sticky.append(n / timed(conn, "select count(variant) from mlops.assign_batch('bench_ab', %s::text[])",
                                    (ids,), "sticky"))
            bare.append(n / timed(conn, "insert into bench_bare (experiment_id, unit_id, variant)"
                                        " select 1, u, 0 from unnest(%s::text[]) u returning 1", (ids,), "bare"))
            sdk.append(sdk_rate(ids[: min(n, 200_000)]))
    return [row(f"assign_batch {n:,} ids, compute only vs growthbook SDK (Python)", statistics.median(compute),
                statistics.median(sdk), "assignments/s"),
            row(f"assign_batch {n:,} new ids, recorded vs bare INSERT", statistics.median(record),
                statistics.median(bare), "assignments/s"),
            row(f"assign_batch {n:,} sticky ids vs bare INSERT", statistics.median(sticky), statistics.median(bare),
                "assignments/s"),
            *cpu_rows(n)]


def cpu_rows(n: int) -> list[dict[str, Any]]:
    """The same cases per second of server (backend) CPU time."""
    if not all(CPU.get(k) and min(CPU[k]) > 0 for k in ("compute", "record", "sticky", "bare")):
        return []
    rate = {k: n / statistics.median(v) for k, v in CPU.items()}
    return [row(f"assign_batch {n:,} ids, {case} vs bare INSERT, server CPU", rate[key], rate["bare"],
                "assignments/CPU-s")
            for key, case in (("compute", "compute only"), ("record", "new ids recorded"), ("sticky", "sticky ids"))]


def bench_single(dsn: str, calls: int) -> list[dict[str, Any]]:
    new, sticky, bare = [], [], []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select 1", prepare=True)
        for i in track(range(calls), description="single assign"):
            started = time.perf_counter()
            conn.execute("select mlops.assign('bench_single', %s::text)", (f"u{i}",), prepare=True).fetchone()
            new.append(time.perf_counter() - started)
            started = time.perf_counter()
            conn.execute("select 1", prepare=True).fetchone()
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            conn.execute("select mlops.assign('bench_single', %s::text)", (f"u{i // 2}",), prepare=True).fetchone()
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
        setup(dsn)
        n, reps = (100_000, 3) if quick else (1_000_000, 1)
        rows += bench_batch(dsn, n, reps)
        rows += bench_single(dsn, 500 if quick else 3000)
    print_rows("experiments (medians)", rows, console)
    return rows


if __name__ == "__main__":
    run_cli(main, __doc__)
