"""Feature store benchmark (issue 3).

1. Online lookup, 1 entity x 10 features across 2 groups, through the Python client's prepared
   statement, vs a bare prepared ``select`` by primary key on a plain 10-column table (binary, tuple
   rows, one reused cursor: the fastest plain psycopg path; also shown: ``conn.execute`` with the
   client's dict rows, and the same select run the way the client runs a one-key lookup: a named
   statement executed straight through libpq, rows loaded by psycopg's loaders, so that row
   compares server work and result shape alone); and a batch of 1,000 keys vs ``where id = any(...)``
   on the plain table.
   Ours and the baseline alternate call by call, so load on the machine hits both alike.
2. Point-in-time training set (spine x 3 groups x history rows each) via mlops.create_training_set
   vs a hand-written LATERAL ``create table as`` on the same data.

    .venv/bin/python -m bench.bench_features            100k spine, 3 x 1M history
    .venv/bin/python -m bench.bench_features --quick    20k spine, 3 x 200k history
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import pgmlops
import psycopg
from psycopg import RawCursor, generators, pq
from psycopg.adapt import Transformer
from psycopg.rows import tuple_row
from rich.console import Console

from bench.common import FAST_SETTINGS, bench_server, print_rows, run_cli

GROUPS = ("fa", "fb", "fc")


def _median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _paired(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds of each function, all called once per round in a shuffled order (on a loaded
    machine the call after a CPU-heavier one waits longer for the server: no case always follows
    the same neighbour)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns.items())
    rng = random.Random(42)
    for _ in range(rounds):
        rng.shuffle(order)
        for name, fn in order:
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _setup(conn: psycopg.Connection[Any], entities: int, history: int, spine: int) -> None:
    conn.execute("create extension pgmlops cascade")
    conn.execute("select mlops.create_entity('customer', 'int8')")
    feats = ", ".join(f'"f{i}": "float8"' for i in range(5))
    for g in GROUPS:
        conn.execute(f"select mlops.create_feature_group('{g}', 'customer', '{{{feats}}}', ttl => '30 days')")
        conn.execute(f"""insert into mlops_features.{g}__v1 (customer_id, event_ts, f0, f1, f2, f3, f4)
            select (i % {entities}), now() - interval '90 days' + (random() * 90) * interval '1 day',
                   random(), random(), random(), random(), random()
              from generate_series(1, {history}) i""")
        conn.execute(f"analyze mlops_features.{g}__v1")
    conn.execute(f"""create table bench_spine as
        select (random() * {entities})::int8 as customer_id,
               now() - interval '90 days' + (random() * 100) * interval '1 day' as ts, (random() > 0.5) as label
          from generate_series(1, {spine})""")
    conn.execute("analyze bench_spine")
    conn.execute(f"""create table bench_plain as
        select i::int8 as id, random() f0, random() f1, random() f2, random() f3, random() f4,
               random() f5, random() f6, random() f7, random() f8, random() f9
          from generate_series(0, {entities - 1}) i""")
    conn.execute("alter table bench_plain add primary key (id)")
    # settle the cluster: no autovacuum of the fresh tables or checkpoint during the timings
    conn.execute("vacuum analyze")
    conn.execute("checkpoint")


HAND_WRITTEN = """create table {name} as
select s.*, a.f0 as fa_f0, a.f1 as fa_f1, b.f0 as fb_f0, b.f1 as fb_f1, c.f0 as fc_f0, c.f1 as fc_f1
  from bench_spine s
  left join lateral (select h.f0, h.f1 from mlops_features.fa__v1 h where h.customer_id = s.customer_id
                        and h.event_ts <= s.ts and h.event_ts >= s.ts - interval '30 days'
                      order by h.event_ts desc limit 1) a on true
  left join lateral (select h.f0, h.f1 from mlops_features.fb__v1 h where h.customer_id = s.customer_id
                        and h.event_ts <= s.ts and h.event_ts >= s.ts - interval '30 days'
                      order by h.event_ts desc limit 1) b on true
  left join lateral (select h.f0, h.f1 from mlops_features.fc__v1 h where h.customer_id = s.customer_id
                        and h.event_ts <= s.ts and h.event_ts >= s.ts - interval '30 days'
                      order by h.event_ts desc limit 1) c on true"""


def main(quick: bool = False) -> list[dict[str, Any]]:
    console = Console()
    entities, history, spine = (20_000, 200_000, 20_000) if quick else (100_000, 1_000_000, 100_000)
    rows: list[dict[str, Any]] = []
    with bench_server("features", (*FAST_SETTINGS, ("shared_buffers", "256MB"))) as server:
        dsn = server.url("postgres")
        with psycopg.connect(dsn, autocommit=True) as conn:
            console.print(f"loading {len(GROUPS)} groups x {history:,} history rows, spine {spine:,} ...")
            _setup(conn, entities, history, spine)
        with pgmlops.connect(dsn) as client:
            fs = client.features
            features = [f"{g}:f{i}" for g in ("fa", "fb") for i in range(5)]  # 10 features, 2 groups
            keys = list(range(0, entities, max(1, entities // 1000)))[:1000]
            plain_sql = "select * from bench_plain where id = $1::int8"
            plain_any = "select * from bench_plain where id = any($1::int8[])"
            raw = RawCursor(client.conn, row_factory=tuple_row)
            sql_fn = RawCursor(client.conn, row_factory=tuple_row)
            fn_sql = "select * from mlops.get_online_features('customer', array[$1::text], $2::text[])"
            it = iter(range(10**9))

            def key() -> int:
                return next(it) * 7919 % entities

            def bare() -> Any:
                raw.execute(plain_sql, (key(),), prepare=True, binary=True)
                return raw.fetchall()

            conn = client.conn
            conn.pgconn.send_prepare(b"bench_plain_pk", plain_sql.encode())
            assert conn.wait(generators.execute(conn.pgconn))[-1].status == pq.ExecStatus.COMMAND_OK
            tx = Transformer(conn)

            def bare_pq() -> Any:  # what FeatureStore._online_one does, on the plain table
                with conn.lock:
                    conn.pgconn.send_query_prepared(b"bench_plain_pk", (str(key()).encode(),), None,
                                                    pq.Format.BINARY)
                    res = conn.wait(generators.execute(conn.pgconn))[-1]
                assert res.status == pq.ExecStatus.TUPLES_OK
                tx.set_pgresult(res)
                return tx.load_rows(0, res.ntuples, tuple)

            def bare_any() -> Any:
                raw.execute(plain_any, (keys,), prepare=True, binary=True)
                return raw.fetchall()

            def sql_path() -> Any:
                sql_fn.execute(fn_sql, (str(key()), features), prepare=True, binary=True)
                return sql_fn.fetchall()

            light = {"ours": lambda: fs.online_raw("customer", [key()], features), "bare": bare, "bare_pq": bare_pq,
                     "bare_dict": lambda: client.conn.execute("select * from bench_plain where id = %s::int8",
                                                              (key(),), prepare=True).fetchall()}
            # CPU-heavy cases run alone: on a loaded machine a call after a busy stretch of the client
            # waits longer for the server to be scheduled, which would slow its neighbour in a pair
            heavy = {"ours_df": lambda: fs.online("customer", [key()], features), "sql": sql_path}
            _paired({**light, **heavy}, 20)  # warm: statements prepared, plans cached
            present = sum(r["fa__f0__status"] == "PRESENT" for r in fs.online_raw("customer", keys, features))
            console.print(f"online rows PRESENT for {present} of {len(keys)} keys")
            n = 1000 if quick else 3000
            one = _paired(light, n)
            for name, fn in heavy.items():
                one.update(_paired({name: fn}, n // 3))
            batch = _paired({"ours": lambda: fs.online_raw("customer", keys, features), "bare": bare_any}, 60)
            rows += [
                {"case": "online 1 key x 10 features / 2 groups", "ours": one["ours"] * 1e3,
                 "baseline": one["bare"] * 1e3, "unit": "ms"},
                {"case": "  same, baseline conn.execute + dict rows", "ours": one["ours"] * 1e3,
                 "baseline": one["bare_dict"] * 1e3, "unit": "ms"},
                {"case": "  same, baseline at the libpq level (as ours)", "ours": one["ours"] * 1e3,
                 "baseline": one["bare_pq"] * 1e3, "unit": "ms"},
                {"case": "  same, client as DataFrame", "ours": one["ours_df"] * 1e3, "baseline": one["bare"] * 1e3,
                 "unit": "ms"},
                {"case": "  same, SQL get_online_features (json)", "ours": one["sql"] * 1e3,
                 "baseline": one["bare"] * 1e3, "unit": "ms"},
                {"case": "online 1,000 keys x 10 features", "ours": batch["ours"] * 1e3,
                 "baseline": batch["bare"] * 1e3, "unit": "ms"},
            ]
            ts_features = [f"{g}:f{i}" for g in GROUPS for i in range(2)]
            counter = iter(range(100))

            def ours_ts() -> None:
                fs.create_training_set(f"bench_ts_{next(counter)}", "bench_spine", ts_features)

            def hand_ts() -> None:
                client.conn.execute(HAND_WRITTEN.format(name=f"bench_hand_{next(counter)}"))

            ours_t, hand_t = [], []
            for _ in range(3):
                ours_t.append(_median_seconds(ours_ts, 1))
                hand_t.append(_median_seconds(hand_ts, 1))
            rows.append({"case": f"training set {spine // 1000}k spine x 3 groups x {history // 1000}k",
                         "ours": statistics.median(ours_t), "baseline": statistics.median(hand_t), "unit": "s"})
    for r in rows:
        r["ours"] = round(r["ours"], 4)
        r["baseline"] = round(r["baseline"], 4)
        r["ratio"] = round(r["ours"] / r["baseline"], 2) if r["baseline"] else None
    print_rows(f"feature store ({'quick' if quick else 'full'} sizes), medians", rows, console)
    return rows


if __name__ == "__main__":
    run_cli(main, __doc__)
