"""Deterministic assignment survives everything (issue 10, item 10): the same (experiment,
unit) gets the same variant across sessions (also after a traffic change), after kill -9 of
the postmaster and restart, after pg_dump/pg_restore and on a database that reached 0.2.0 by
ALTER EXTENSION UPDATE or had the bundled script re-applied; recorded first exposures are
unchanged by each. Concurrent first exposure of one unit from N connections records exactly
one row, and every connection gets that row's variant."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pgmlops
import psycopg
import pytest
from pgmlops.install import available_versions
from pgmlops.server import LocalServer
from psycopg import sql
from psycopg.types.json import Jsonb

from ..conftest import install_mode
from . import crashlib
from .test_crash import record
from .test_dump_restore import dump_restore

EXP = "det_exp"
VARIANTS = [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.3}, {"name": "c", "weight": 0.2}]
UNITS = [f"unit_{i}" for i in range(200)]
FRESH = [f"fresh_{i}" for i in range(100)]  # never exposed before the fault: hashing alone decides


def create(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select mlops.create_experiment(name => %s::text, variants => %s::jsonb, coverage => 0.9, "
                     "seed => 'det-seed')", (EXP, Jsonb(VARIANTS)))
        conn.execute("select mlops.start_experiment(%s::text)", (EXP,))


def assign(url: str, units: list[str], how: str = "single") -> dict[str, str | None]:
    """Variants from a new session: one mlops.assign per unit, or one recording assign_batch, or
    a non-recording assign_batch (record => false)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if how == "single":
            out: dict[str, str | None] = {}
            for u in units:
                row = conn.execute("select mlops.assign(%s::text, %s::text)", (EXP, u)).fetchone()
                out[u] = row[0] if row else None
            return out
        rows = conn.execute("select unit_id, variant from mlops.assign_batch(%s::text, %s::text[], %s::boolean)",
                            (EXP, units, how == "batch")).fetchall()
        return {r[0]: r[1] for r in rows}


def recorded(url: str) -> dict[str, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("""select a.unit_id, v.name from mlops.experiment_assignments a
                                 join mlops.experiments e on e.id = a.experiment_id and e.name = %s::text
                                 join mlops.experiment_variants v
                                   on v.experiment_id = e.id and v.position = a.variant""",
                            (EXP,)).fetchall()
    return {r[0]: r[1] for r in rows}


def first_exposure(url: str) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """Half the units through assign, half through a recording assign_batch; plus the
    non-recording variants of FRESH."""
    third = len(UNITS) // 3
    got = assign(url, UNITS[:third]) | assign(url, UNITS[third:], "batch")
    return got, assign(url, FRESH, "peek")


def same_after(url: str, before: dict[str, str | None], fresh: dict[str, str | None],
               rows: dict[str, str]) -> dict[str, int]:
    """After the event: recorded rows identical, every unit's variant identical (by each path),
    fresh units hashed as before."""
    assert recorded(url) == rows
    again = assign(url, UNITS, "peek")
    assert again == before
    assert assign(url, UNITS[::7]) == {u: before[u] for u in UNITS[::7]}
    assert assign(url, FRESH, "batch") == fresh  # first exposure now: same as computed before the event
    return {"units": len(UNITS), "recorded": len(rows), "fresh": len(FRESH),
            "in_experiment": sum(v is not None for v in before.values())}


def test_same_variant_across_sessions_and_traffic_change(database_factory: Callable[..., str]) -> None:
    url = database_factory("extension", prefix="det_sessions")
    create(url)
    before, _ = first_exposure(url)
    rows = recorded(url)
    assert 0 < len(rows) < len(UNITS) and rows == {u: v for u, v in before.items() if v is not None}
    rng = random.Random(7)
    changed = 0
    for _ in range(3):  # more sessions, units in another order
        order = UNITS[:]
        rng.shuffle(order)
        got = assign(url, order)
        changed += sum(got[u] != before[u] for u in order)
    with psycopg.connect(url, autocommit=True) as conn:  # sticky: a traffic change moves nobody assigned
        conn.execute("select mlops.set_experiment_traffic(%s::text, weights => '{0.1,0.1,0.8}'::float8[], "
                     "coverage => 1)", (EXP,))
    after_change = {u: v for u, v in assign(url, UNITS).items() if before[u] is not None}
    changed_by_traffic = sum(after_change[u] != rows[u] for u in rows)
    assert (changed, changed_by_traffic) == (0, 0)
    assert recorded(url) == rows | {u: v for u, v in assign(url, UNITS, "peek").items() if v is not None}
    record("assignment_sessions", units=len(UNITS), recorded=len(rows), sessions=5, changed=changed,
           changed_by_traffic_change=changed_by_traffic)


def test_same_variant_after_kill9_restart(private_server: LocalServer) -> None:
    dbname = "det_crash"
    with psycopg.connect(private_server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    url = private_server.url(dbname)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension pgmlops cascade")
    create(url)
    before, fresh = first_exposure(url)
    rows = recorded(url)
    crashlib.kill_postmaster(private_server)
    private_server.start()
    crashlib.wait_ready(url)
    record("assignment_after_kill9", **same_after(url, before, fresh, rows))


def test_same_variant_after_dump_restore(database_factory: Callable[..., str], tmp_path: Path) -> None:
    src = database_factory("extension", prefix="det_dump_src")
    create(src)
    before, fresh = first_exposure(src)
    rows = recorded(src)
    dst = database_factory(None, prefix="det_dump_dst")
    assert dump_restore(src, dst, tmp_path) == []
    record("assignment_after_dump_restore", **same_after(dst, before, fresh, rows))


@pytest.mark.skipif(len(available_versions()) < 2, reason="no released version to upgrade from")
def test_same_variant_after_upgrade_and_reinstall(database_factory: Callable[..., str], tmp_path: Path) -> None:
    """0.1.0 has no experiments, so assignments cannot predate that upgrade: a database upgraded
    0.1.0 -> 0.2.0 must assign exactly like a fresh 0.2.0, keep its assignments through a
    dump/restore, and a bundled install re-applied over recorded assignments (what every
    upgrade does to the idempotent files) must change none of them."""
    fresh_url = database_factory("extension", prefix="det_fresh")
    create(fresh_url)
    want, want_fresh = first_exposure(fresh_url)
    upg = database_factory(None, prefix="det_upg")
    install_mode(upg, "extension", python=True, version=available_versions()[0])
    with psycopg.connect(upg, autocommit=True) as conn:
        conn.execute("alter extension pgmlops update")
        conn.execute("alter extension pgmlops_python update")
    create(upg)
    got, got_fresh = first_exposure(upg)
    assert (got, got_fresh) == (want, want_fresh)
    rows = recorded(upg)
    dst = database_factory(None, prefix="det_upg_dst")
    assert dump_restore(upg, dst, tmp_path) == []
    same_after(dst, got, got_fresh, rows)

    bundled = database_factory("bundled", prefix="det_bundled")
    create(bundled)
    before, fresh = first_exposure(bundled)
    rows = recorded(bundled)
    pgmlops.install(bundled)  # re-applies the current script (idempotent files re-run)
    record("assignment_after_upgrade", upgraded_equals_fresh=True,
           **same_after(bundled, before, fresh, rows))


def exposure_race(url: str, units: list[str], connections: int) -> dict[str, Any]:
    """For each unit, ``connections`` threads (each its own session, half via assign_batch) expose
    it at the same moment; returns what each got and how many rows were recorded."""
    barrier = threading.Barrier(connections)
    results: dict[str, list[str | None]] = {u: [] for u in units}
    lock = threading.Lock()
    errors: list[str] = []

    def worker(i: int) -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                for u in units:
                    barrier.wait(timeout=60)
                    if i % 2:
                        row = conn.execute("select variant from mlops.assign_batch(%s::text, %s::text[])",
                                           (EXP, [u])).fetchone()
                    else:
                        row = conn.execute("select mlops.assign(%s::text, %s::text)", (EXP, u)).fetchone()
                    with lock:
                        results[u].append(row[0] if row else None)
        except Exception as exc:  # reported below
            errors.append(repr(exc))
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with psycopg.connect(url, autocommit=True) as conn:
        counts: dict[str, int] = dict(conn.execute("select unit_id, count(*) from mlops.experiment_assignments "
                                   "where unit_id = any(%s::text[]) group by 1", (units,)).fetchall())
    return {"results": results, "rows": counts, "errors": errors}


def test_concurrent_first_exposure_records_one_row(database_factory: Callable[..., str]) -> None:
    url = database_factory("extension", prefix="det_race")
    create(url)
    units = [f"race_{i}" for i in range(30)]
    race = exposure_race(url, units, connections=8)
    assert race["errors"] == []
    rows = recorded(url)
    disagree = [u for u, got in race["results"].items() if len(got) != 8 or len(set(got)) != 1]
    in_exp = [u for u in units if race["results"][u][0] is not None]
    assert disagree == []
    assert {u: race["rows"].get(u, 0) for u in units} == {u: 1 if u in in_exp else 0 for u in units}
    assert {u: rows[u] for u in in_exp} == {u: race["results"][u][0] for u in in_exp}
    record("assignment_concurrent_first_exposure", units=len(units), connections=8, rows_per_unit_max=max(
        race["rows"].values()), disagreements=len(disagree))
