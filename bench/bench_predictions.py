"""Prediction logging benchmarks (issue 5), side by side in one run:

1. bulk: N predictions through ``client.predictions.log_many`` (the request keys of all rows
   in index order into the key table, then the rows chunk by chunk as binary COPY data into the
   partitioned log, in one savepoint, while threads encode the next chunk) vs a bare COPY of the same chunks (same
   thread, the same binary encoder, and also pandas CSV) into an unpartitioned table without
   triggers or indexes; and the server side alone, from binary data prepared beforehand: the
   direct COPY (keys + rows) and the staging path (COPY into the session temp table + set-based
   ingestion, the fallback for repeats) vs the bare COPY, as wall time and as server process
   CPU; beside them the floor of any write-time idempotency: the bare COPY into the same plain
   table with request_id unique (rows as they come, and sorted by request_id);
2. single: ``mlops.log_prediction`` round trip vs a bare single-row INSERT (median per call), and
   three floors: the INSERT ... ON CONFLICT DO NOTHING into the plain table with request_id unique,
   what the spec makes any log_prediction write (the key claim and the insert into the
   partitioned log) sent as one statement, without a function, and that statement as the whole
   body of a PL/pgSQL function called like log_prediction;
3. concurrent: W writers x M predictions via log_many batches (10 % of request_ids shared
   between writers), throughput and a count check (nothing lost, nothing duplicated).

    .venv/bin/python -m bench.bench_predictions [--quick]
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pgmlops
import psycopg
from pgmlops.copy_binary import binary_copy
from pgmlops.predictions import COPY_TYPES, KEY_TYPES, CopyChunks, copy_format, copy_statements, keys_copy, ordered_keys
from rich.console import Console

from bench.common import FAST_SETTINGS, bench_server, print_rows, run_cli

MODEL = "bench_model"


def frame(n: int, prefix: str, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    return pd.DataFrame({
        "request_id": [f"{prefix}-{i}" for i in range(n)],
        "model": MODEL,
        "version": 1,
        "label": rng.choice(["yes", "no"], n),
        "score": rng.uniform(size=n).round(6),
        "confidence": rng.uniform(size=n).round(6),
        "latency_ms": rng.gamma(2.0, 3.0, n).round(3),
        "features": [f'{{"x": {v:.4f}, "segment": "s{v * 10 % 7:.0f}"}}' for v in rng.uniform(size=n)],
        "created_at": [now - timedelta(seconds=float(s)) for s in rng.uniform(0, 3600, n)],
    })


def bare_copy(conn: psycopg.Connection[Any], df: pd.DataFrame, binary: bool, chunk: int = 100_000) -> None:
    """The baseline: the same rows, in the same chunks made by the same background thread as
    log_many (so both overlap client-side encoding with server work), as binary COPY data like
    log_many's or as pandas CSV, COPYed into a plain table."""
    types = [COPY_TYPES[c] for c in df.columns] if binary else None
    with conn.transaction(), CopyChunks(df, chunk, types=types) as chunks:
        for _, data in chunks:
            with conn.cursor().copy(f"copy bench_bare ({', '.join(df.columns)}) from stdin"
                                    f" (format {copy_format(data)})") as copy:
                copy.write(data)


def setup(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists pgmlops cascade")
        conn.execute("insert into mlops.models (name, task) values (%s::text, 'classification')", (MODEL,))
        conn.execute("insert into mlops.model_versions (model_id, version, flavor, artifact, artifact_sha256)"
                     " select id, 1, 'custom', '\\x00'::bytea, repeat('a', 64) from mlops.models"
                     " where name = %s::text", (MODEL,))
        conn.execute("""create table bench_bare (request_id text, model text, version integer, label text,
                        score float8, confidence float8, latency_ms float8, features jsonb,
                        created_at timestamptz)""")
        # the floor of any write-time idempotency: the same plain table with request_id unique
        conn.execute("create table bench_keyed (like bench_bare)")
        conn.execute("alter table bench_keyed alter request_id set data type text collate \"C\","
                     " add primary key (request_id)")
        conn.execute("select mlops.maintain_predictions()")


def backend_cpu(conn: psycopg.Connection[Any]) -> float | None:
    """CPU seconds the connection's server process has used (user + system), from /proc; None
    when unreadable. Unlike wall time it does not count waiting for a core on a busy machine."""
    try:
        fields = Path(f"/proc/{conn.info.backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_bulk(dsn: str, n: int, reps: int) -> list[dict[str, Any]]:
    ours: list[float] = []
    base: list[float] = []
    base_csv: list[float] = []
    with pgmlops.connect(dsn) as client, psycopg.connect(dsn, autocommit=True) as conn:
        for rep in range(reps):
            df = frame(n, f"bulk{rep}", rep)
            for binary, times_of in ((True, base), (False, base_csv)):
                t = time.perf_counter()
                bare_copy(conn, df, binary)
                times_of.append(time.perf_counter() - t)
                conn.execute("truncate bench_bare")
            # every rep from the same start as the bare COPY's: an empty log and key index
            conn.execute("truncate mlops.predictions, mlops.prediction_requests")
            t = time.perf_counter()
            assert client.predictions.log_many(df, progress=False) == n
            ours.append(time.perf_counter() - t)
    o = statistics.median(ours)
    rows = [{"case": f"bulk {n:,} rows end to end from a DataFrame: rows/s (log_many vs bare COPY, {how})",
             "ours": round(n / o), "baseline": round(n / b), "ratio": round(b / o, 3), "unit": "rows/s"}
            for how, b in (("binary like ours", statistics.median(base)),
                           ("pandas CSV", statistics.median(base_csv)))]
    # server side only: the same rows as binary COPY data prepared beforehand
    kinds = ("bare", "keyed", "keyed_sorted", "direct", "staging")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    with pgmlops.connect(dsn) as client, psycopg.connect(dsn, autocommit=True) as conn:
        for rep in range(reps):
            for kind in times:
                df = frame(n, f"srv{kind}{rep}", 50 + rep)
                if kind == "keyed_sorted":  # the best case for a unique index: rows in key order
                    df = df.sort_values("request_id", key=lambda ids: ids.str.encode("utf-8"))
                data: str | bytes | None
                keys: str | bytes
                if kind.startswith(("bare", "keyed")):
                    cols, keys = list(df.columns), b""
                    data = binary_copy(df, [COPY_TYPES[c] for c in cols])
                    assert data is not None
                else:  # the client's own data and keys in index order, made beforehand as one chunk
                    batch, _ = client.predictions._resolved_batch(df)
                    cols = list(batch.columns)
                    data = binary_copy(batch, [COPY_TYPES[c] for c in cols])
                    encoded_keys = binary_copy(ordered_keys(batch), KEY_TYPES)
                    assert data is not None and encoded_keys is not None
                    keys = encoded_keys
                    direct_sql, staging_sql = copy_statements(cols, data)
                if kind.startswith("keyed"):
                    conn.execute("truncate bench_keyed")  # both keyed cases start from an empty index
                elif kind != "bare":  # ours likewise: an empty log and key index
                    conn.execute("truncate mlops.predictions, mlops.prediction_requests")
                t, c = time.perf_counter(), backend_cpu(conn)
                with conn.transaction():
                    if kind.startswith(("bare", "keyed")):
                        table = "bench_bare" if kind == "bare" else "bench_keyed"
                        with conn.cursor().copy(f"copy {table} ({', '.join(cols)}) from stdin (format binary)") as cp:
                            cp.write(data)
                    elif kind == "direct":
                        with conn.cursor().copy(keys_copy(keys)) as cp:
                            cp.write(keys)
                        with conn.cursor().copy(direct_sql) as cp:
                            cp.write(data)
                    else:
                        conn.execute("select mlops.create_prediction_staging()")
                        with conn.cursor().copy(staging_sql) as cp:
                            cp.write(data)
                        got = conn.execute("select mlops.log_staged_predictions() as n").fetchone()
                        assert got is not None and got[0] == n
                times[kind].append(time.perf_counter() - t)
                c2 = backend_cpu(conn)
                if c is not None and c2 is not None:
                    cpu[kind].append(c2 - c)
            conn.execute("truncate bench_bare, bench_keyed")
    b = statistics.median(times["bare"])
    for kind, what in (("keyed", "floor: bare COPY into the table with request_id unique"),
                       ("keyed_sorted", "floor, best case: same, rows sorted by request_id"),
                       ("direct", "direct COPY of rows + keys"), ("staging", "staging + ingest (fallback)")):
        o = statistics.median(times[kind])
        rows.append({"case": f"bulk {n:,} rows server side (same binary data): rows/s ({what} vs bare COPY)",
                     "ours": round(n / o), "baseline": round(n / b), "ratio": round(b / o, 3), "unit": "rows/s"})
        if cpu[kind] and cpu["bare"]:
            oc, bc = statistics.median(cpu[kind]), statistics.median(cpu["bare"])
            rows.append({"case": f"  same, server process CPU ({what} vs bare COPY)", "ours": round(oc, 2),
                         "baseline": round(bc, 2), "ratio": round(bc / oc, 3) if oc else "", "unit": "CPU s"})
    return rows


def bench_single(dsn: str, calls: int) -> list[dict[str, Any]]:
    """log_prediction vs a bare INSERT, the floor of write-time idempotency (the same INSERT
    ... ON CONFLICT DO NOTHING into the table with request_id unique) and the floor of the spec
    (key claim + partitioned insert as one statement). Interleaved per call."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table if not exists bench_single (request_id text, model text, version integer,"
                     " label text, score float8, latency_ms float8, features jsonb, created_at timestamptz"
                     " default now())")
        conn.execute("create table if not exists bench_single_keyed (like bench_single including defaults)")
        conn.execute("alter table bench_single_keyed alter request_id set data type text collate \"C\","
                     " add primary key (request_id)")
        features = '{"x": 0.5, "segment": "s1"}'
        insert = ("insert into {} (request_id, model, version, label, score, latency_ms, features)"
                  " values (%s::text, %s::text, 1, %s::text, %s::float8, %s::float8, %s::jsonb)")
        version_id = conn.execute("select v.id from mlops.model_versions v join mlops.models m on m.id = v.model_id"
                                  " where m.name = %s and v.version = 1", (MODEL,)).fetchone()
        assert version_id is not None
        # what any PL/pgSQL log_prediction costs at least: the spec's statement as its whole body, called
        # like ours (named arguments, security definer with a pinned search_path), no checks, no lookup
        conn.execute("create or replace function bench_plpgsql_floor(request_id text, model text, version integer,"
                     " label text, score float8, latency_ms float8, features jsonb) returns bigint"
                     " language plpgsql security definer set search_path = pg_catalog, pg_temp as $f$"
                     " declare new_id bigint; begin"
                     " with claimed as (insert into mlops.prediction_requests as r (request_id, prediction_id)"
                     " values (bench_plpgsql_floor.request_id, nextval('mlops.predictions_id_seq'))"
                     " on conflict on constraint prediction_requests_pkey do nothing returning r.prediction_id)"
                     " insert into mlops.predictions as p (id, request_id, model, model_version, model_version_id,"
                     " label, score, latency_ms, features, created_at)"
                     " select c.prediction_id, bench_plpgsql_floor.request_id, bench_plpgsql_floor.model,"
                     f" bench_plpgsql_floor.version, {int(version_id[0])}, bench_plpgsql_floor.label,"
                     " bench_plpgsql_floor.score, bench_plpgsql_floor.latency_ms, bench_plpgsql_floor.features,"
                     " now() from claimed c returning p.id into new_id; return new_id; end $f$")
        call = ("(request_id => %s::text, model => %s::text, version => 1, label => %s::text, score => %s::float8,"
                " latency_ms => %s::float8, features => %s::jsonb)")
        cases = {"ours": "select mlops.log_prediction" + call,
                 "bare": insert.format("bench_single"),
                 "keyed": insert.format("bench_single_keyed") + " on conflict do nothing",
                 # what log_prediction must write, as one statement from the client: no function, no checks,
                 # the version id known; the key claim is the same statement log_prediction runs
                 "spec": ("with r(rid, model, label, score, latency_ms, features) as"
                          " (values (%s::text, %s::text, %s::text, %s::float8, %s::float8, %s::jsonb)),"
                          " claimed as (insert into mlops.prediction_requests (request_id, prediction_id)"
                          " select r.rid, nextval('mlops.predictions_id_seq') from r"
                          " on conflict on constraint prediction_requests_pkey do nothing returning prediction_id)"
                          " insert into mlops.predictions (id, request_id, model, model_version, model_version_id,"
                          " label, score, latency_ms, features, created_at)"
                          f" select c.prediction_id, r.rid, r.model, 1, {int(version_id[0])}, r.label, r.score,"
                          " r.latency_ms, r.features, now() from claimed c, r"),
                 "plpgsql": "select bench_plpgsql_floor" + call}
        wall: dict[str, list[float]] = {k: [] for k in cases}
        cpu = dict.fromkeys(cases, 0.0)  # server CPU summed over the calls (10 ms ticks, averages out)
        for i in range(calls):  # interleaved so all see the same machine load
            for kind, sql in cases.items():
                c, t = backend_cpu(conn), time.perf_counter()
                conn.execute(sql, (f"single-{kind}-{i}", MODEL, "yes", 0.5, 1.25, features))
                wall[kind].append(time.perf_counter() - t)
                c2 = backend_cpu(conn)
                cpu[kind] += (c2 - c) if c is not None and c2 is not None else 0.0
        # each wrote every row (a floor that skipped its insert would be no floor)
        for kind in ("ours", "spec", "plpgsql"):
            logged = conn.execute("select count(*) from mlops.predictions where request_id like %s",
                                  (f"single-{kind}-%",)).fetchone()
            if logged is None or logged[0] != calls:
                raise AssertionError(f"{kind}: {logged} rows logged, expected {calls}")
    med = {k: statistics.median(v) * 1e6 for k, v in wall.items()}
    rows = [{"case": f"single row round trip ({calls} calls, median): log_prediction vs bare INSERT",
             "ours": round(med["ours"], 1), "baseline": round(med["bare"], 1),
             "ratio": round(med["ours"] / med["bare"], 3), "unit": "us/call"},
            {"case": "  floor: bare INSERT ... ON CONFLICT DO NOTHING into the table with request_id unique"
                     " vs bare INSERT", "ours": round(med["keyed"], 1), "baseline": round(med["bare"], 1),
             "ratio": round(med["keyed"] / med["bare"], 3), "unit": "us/call"},
            {"case": "  floor of the spec: key claim + insert into the partitioned log as one statement"
                     " (no function) vs bare INSERT", "ours": round(med["spec"], 1), "baseline": round(med["bare"], 1),
             "ratio": round(med["spec"] / med["bare"], 3), "unit": "us/call"},
            {"case": "  floor of PL/pgSQL: a function whose whole body is that statement, called like"
                     " log_prediction, vs bare INSERT", "ours": round(med["plpgsql"], 1),
             "baseline": round(med["bare"], 1), "ratio": round(med["plpgsql"] / med["bare"], 3), "unit": "us/call"}]
    if cpu["bare"] > 0:
        rows.append({"case": "single row: server process CPU per call (mean), log_prediction vs bare INSERT",
                     "ours": round(cpu["ours"] / calls * 1e6), "baseline": round(cpu["bare"] / calls * 1e6),
                     "ratio": round(cpu["ours"] / cpu["bare"], 3), "unit": "us/call"})
    return rows


def bench_concurrent(dsn: str, writers: int, per_writer: int, batch: int = 5000) -> list[dict[str, Any]]:
    shared = per_writer // 10
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def work(k: int) -> None:
        try:
            df = frame(per_writer, f"w{k}", 100 + k)
            df.loc[: shared - 1, "request_id"] = [f"shared-{i}" for i in range(shared)]  # same ids in every writer
            df = df.sample(frac=1.0, random_state=k).reset_index(drop=True)
            with pgmlops.connect(dsn) as client:
                barrier.wait()
                for start in range(0, per_writer, batch):
                    client.predictions.log_many(df.iloc[start:start + batch], progress=False)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(writers)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    if errors:
        raise errors[0]
    expected = writers * (per_writer - shared) + shared
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select count(*), count(distinct request_id) from mlops.predictions"
                           " where request_id like 'w%%' or request_id like 'shared-%%'").fetchone()
    assert row is not None
    ok = row[0] == row[1] == expected
    if not ok:
        raise AssertionError(f"count check failed: {row[0]} rows, {row[1]} distinct, expected {expected}")
    total = writers * per_writer
    return [{"case": f"{writers} writers x {per_writer:,} (log_many, {shared} shared ids each): rows/s",
             "ours": round(total / elapsed), "baseline": "", "ratio": "", "unit": "rows/s"},
            {"case": "concurrent count check (rows == distinct == expected)", "ours": row[0], "baseline": expected,
             "ratio": "ok" if ok else "FAIL", "unit": "rows"}]


def main(quick: bool = False) -> list[dict[str, Any]]:
    console = Console()
    rows: list[dict[str, Any]] = []
    with bench_server("pred", (*FAST_SETTINGS, ("max_connections", "50"))) as server:
        dsn = server.url()
        setup(dsn)
        n, reps = (100_000, 3) if quick else (1_000_000, 3)
        rows += bench_bulk(dsn, n, reps)
        rows += bench_single(dsn, 500 if quick else 3000)
        rows += bench_concurrent(dsn, 8, 5_000 if quick else 50_000)
    print_rows("prediction logging (medians)", rows, console)
    return rows


if __name__ == "__main__":
    run_cli(main, __doc__)
