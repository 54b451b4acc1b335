"""Mixed-load soak (issue 10, item 13): concurrent online feature lookups, prediction logging,
assignments and feedback through the Python client for a bounded time, on a private local
cluster (durable settings: fsync and synchronous_commit on) or on ``--dsn``.

Prints throughput and p50 / p99 per operation, the errors (exit status 1 when there is any),
and the resident memory of the soak's own backends (``pg_backend_pid()`` ->
``/proc/<pid>/status``) after a warm-up and at the end: VmRSS, RssAnon (private memory: what a
leak grows) and RssShmem (shared buffers the backend has touched so far; VmRSS includes them and
they grow towards shared_buffers as the tables grow: not a leak), and whether it stayed flat
(every backend's RssAnon grew by at most ``--flat-kib``).

    make soak                                  # 10 minutes (SOAK_SECONDS=60 make soak: 1 minute)
    .venv/bin/python -m bench.soak --seconds 60 [--workers 2] [--dsn URL] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pgmlops
import pgmlops.experiments
import pgmlops.feature_store
import pgmlops.predictions  # imported before the workers fork: a worker's first call is not an import (pandas)
import psycopg

from bench.common import bench_server

OPERATIONS = ("online_lookup", "log_prediction", "assign", "feedback")
MAX_SECONDS = 4 * 3600
ENTITIES = 10_000
FEATURES = ["soak:f0", "soak:f1", "soak:f2", "soak:f3", "soak:f4"]
MODEL = "soak_m"
EXPERIMENT = "soak_ab"
MEMORY_COLUMNS = ("backend", "pid", "vmrss_start_kib", "vmrss_end_kib", "rssanon_start_kib", "rssanon_end_kib",
                  "rssanon_growth_kib", "rssshmem_start_kib", "rssshmem_end_kib")
UNITS = 200_000  # assign draws from here: first exposures early, mostly sticky lookups later


def setup(dsn: str) -> None:
    """Idempotent: pgmlops, an entity with one 5-feature group, a model version, a running experiment."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists pgmlops cascade")
        if conn.execute("select from mlops.entities where name = 'customer'").fetchone() is None:
            conn.execute("select mlops.create_entity('customer', 'int8')")
            feats = json.dumps({f"f{i}": "float8" for i in range(5)})
            conn.execute("select mlops.create_feature_group('soak', 'customer', %s::json, ttl => '30 days')",
                         (feats,))
            conn.execute(f"""insert into mlops_features.soak__v1 (customer_id, event_ts, f0, f1, f2, f3, f4)
                select i % {ENTITIES}, now() - (random() * 5) * interval '1 day',
                       random(), random(), random(), random(), random()
                  from generate_series(1, {ENTITIES * 3}) i""")
            conn.execute("analyze mlops_features.soak__v1")
        conn.execute("select mlops.register_model(name => %s::text, if_not_exists => true)", (MODEL,))
        if conn.execute("select from mlops.model_versions v join mlops.models m on m.id = v.model_id "
                        "where m.name = %s::text", (MODEL,)).fetchone() is None:
            conn.execute("select mlops.create_model_version(model => %s::text, artifact => '\\x01'::bytea)",
                         (MODEL,))
        if conn.execute("select from mlops.experiments where name = %s::text", (EXPERIMENT,)).fetchone() is None:
            conn.execute("select mlops.create_experiment(%s::text, variants => %s::jsonb)",
                         (EXPERIMENT, '[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}]'))
            conn.execute("select mlops.start_experiment(%s::text)", (EXPERIMENT,))


def _operation(op: str, client: pgmlops.Client, rng: random.Random, tag: str, n: int, workers: int) -> None:
    if op == "online_lookup":
        rows = client.features.online_raw("customer", [rng.randrange(ENTITIES)], FEATURES)
        if len(rows) != 1:
            raise RuntimeError(f"online lookup returned {len(rows)} rows")
    elif op == "log_prediction":
        unit = f"u{rng.randrange(UNITS)}"
        client.predictions.log(MODEL, request_id=f"{tag}-{n}", version=1, score=rng.random(),
                               features={"f0": rng.random()}, latency_ms=rng.random() * 10,
                               unit_id=unit, experiment=EXPERIMENT)
    elif op == "assign":
        if client.experiments.assign(EXPERIMENT, f"u{rng.randrange(UNITS)}") is None:
            raise RuntimeError("assign returned no variant in a running full-coverage experiment")
    elif op == "feedback":
        # ground truth for requests the prediction workers log (before or after their logging:
        # feedback for a not yet logged request is kept and joined later)
        worker = rng.randrange(workers)
        client.predictions.feedback(f"log_prediction{worker}-{rng.randrange(1, max(2, n))}",
                                    correct=rng.random() < 0.8, value=rng.random())
    else:
        raise ValueError(op)


@dataclass
class WorkerResult:
    op: str
    pid: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    max_at: float = 0.0  # when the slowest call started (time.time())


def _worker(dsn: str, op: str, index: int, workers: int, deadline: float, pids: Any, done: Any, release: Any,
            results: Any) -> None:
    rng = random.Random(f"{op}{index}")
    tag = f"{op}{index}"
    result = WorkerResult(op, 0)
    with pgmlops.connect(dsn) as client:
        row = client.conn.execute("select pg_catalog.pg_backend_pid() as pid").fetchone()
        assert row is not None
        result.pid = int(row["pid"])
        pids.put((op, index, result.pid))
        n = 0
        slowest = 0.0
        while time.time() < deadline:
            n += 1
            started = time.perf_counter()
            try:
                _operation(op, client, rng, tag, n, workers)
            except Exception as exc:  # every error counts; keep going on a fresh connection if it broke
                result.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                if client.conn.closed:
                    break
                continue
            ms = (time.perf_counter() - started) * 1e3
            if ms > slowest:
                slowest, result.max_at = ms, time.time() - ms / 1e3
            result.latencies_ms.append(ms)
        done.put(index)
        release.wait(60)  # keep the backend until the parent has read its memory
    results.put(asdict(result))


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and RssAnon (kB) of a process, from /proc/<pid>/status."""
    got: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssShmem"):
            got[key] = int(value.split()[0])
    return got


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(dsn: str, seconds: float, workers: int = 2, warmup: float | None = None,
        flat_kib: int = 2048) -> dict[str, Any]:
    """Run the soak; returns per-operation figures, backend memory and the error list."""
    if not 1 <= seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be within 1..{MAX_SECONDS}, got {seconds}")
    setup(dsn)
    warm = warmup if warmup is not None else min(30.0, seconds / 10)
    ctx = mp.get_context("fork")
    pids, done, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    release = ctx.Event()
    started = time.time()
    deadline = started + seconds
    procs = [ctx.Process(target=_worker, daemon=True,
                         args=(dsn, op, i, workers, deadline, pids, done, release, results))
             for op in OPERATIONS for i in range(workers)]
    for p in procs:
        p.start()
    backends = [pids.get(timeout=60) for _ in procs]
    time.sleep(max(0.0, started + warm - time.time()))
    mem_start = {pid: _memory(pid) for _, _, pid in backends}
    for _ in procs:
        done.get(timeout=seconds + 120)
    elapsed = time.time() - started - warm
    mem_end = {pid: _memory(pid) for _, _, pid in backends}
    release.set()
    collected = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    with psycopg.connect(dsn, autocommit=True) as conn:
        load = os.getloadavg()
        counts = conn.execute("select (select count(*) from mlops.predictions), "
                              "(select count(*) from mlops.experiment_assignments)").fetchone()
    ops = []
    for op in OPERATIONS:
        lat = [x for r in collected if r["op"] == op for x in r["latencies_ms"]]
        errs = [e for r in collected if r["op"] == op for e in r["errors"]]
        ops.append({"operation": op, "calls": len(lat), "per_second": round(len(lat) / (seconds or 1), 1),
                    "p50_ms": round(statistics.median(lat), 3) if lat else None,
                    "p99_ms": round(_percentile(lat, 0.99), 3), "max_ms": round(max(lat), 3) if lat else None,
                    "max_at_s": round(max((r for r in collected if r["op"] == op),
                                          key=lambda r: max(r["latencies_ms"], default=0.0))["max_at"] - started, 1),
                    "errors": len(errs), "first_errors": errs[:3]})
    memory = []
    for op, index, pid in backends:
        growth = mem_end[pid].get("RssAnon", 0) - mem_start[pid].get("RssAnon", 0)
        memory.append({"backend": f"{op}#{index}", "pid": pid,
                       "vmrss_start_kib": mem_start[pid]["VmRSS"], "vmrss_end_kib": mem_end[pid]["VmRSS"],
                       "rssanon_start_kib": mem_start[pid].get("RssAnon"),
                       "rssanon_end_kib": mem_end[pid].get("RssAnon"), "rssanon_growth_kib": growth,
                       "rssshmem_start_kib": mem_start[pid].get("RssShmem"),
                       "rssshmem_end_kib": mem_end[pid].get("RssShmem")})
    return {"seconds": seconds, "warmup_seconds": warm, "memory_window_seconds": round(elapsed, 1),
            "workers_per_operation": workers, "operations": ops, "memory": memory,
            "memory_flat": all(m["rssanon_growth_kib"] <= flat_kib for m in memory), "flat_kib": flat_kib,
            "errors": sum(o["errors"] for o in ops), "load_average": [round(x, 2) for x in load],
            "predictions": counts[0] if counts else None, "assignments": counts[1] if counts else None}


def report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"soak: {result['seconds']:g} s, {result['workers_per_operation']} worker(s) per operation, "
                        f"load average {result['load_average']}")
    columns = ("operation", "calls", "per_second", "p50_ms", "p99_ms", "max_ms", "max_at_s", "errors")
    for col in columns:
        table.add_column(col)
    for o in result["operations"]:
        table.add_row(*(str(o[c]) for c in columns))
    console.print(table)
    mem = Table(title=f"backend memory (kB) after {result['warmup_seconds']:g} s warm-up and at the end "
                      f"({result['memory_window_seconds']} s apart)")
    for col in MEMORY_COLUMNS:
        mem.add_column(col.removesuffix("_kib").replace("_", " "))
    for m in result["memory"]:
        mem.add_row(*(str(m[c]) for c in MEMORY_COLUMNS))
    console.print(mem)
    console.print(f"memory flat (RssAnon growth <= {result['flat_kib']} kB per backend): {result['memory_flat']}; "
                  f"errors: {result['errors']}; rows: {result['predictions']} predictions, "
                  f"{result['assignments']} assignments")
    for o in result["operations"]:
        for e in o["first_errors"]:
            console.print(f"[red]{o['operation']}: {e}[/red]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)),
                        help=f"duration (default $SOAK_SECONDS or 600; at most {MAX_SECONDS})")
    parser.add_argument("--workers", type=int, default=2, help="processes per operation (default 2)")
    parser.add_argument("--dsn", help="run against this database instead of a private cluster")
    parser.add_argument("--flat-kib", type=int, default=2048, help="allowed RssAnon growth per backend (kB)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.dsn:
        result = run(args.dsn, args.seconds, args.workers, flat_kib=args.flat_kib)
    else:
        with bench_server("soak", settings=(("max_connections", "50"),)) as server:
            result = run(server.url(), args.seconds, args.workers, flat_kib=args.flat_kib)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    sys.exit(1 if result["errors"] else 0)


if __name__ == "__main__":
    main()
