"""Never two champions (issue 10, item 9): 8 threads, each with its own pgmlops client
(connection), make random alias moves, promotions (alias ``production``, from which the
version stage derives) and rollbacks on two models, half of them in SERIALIZABLE
transactions. Serialization failures and deadlocks are retried (the same operation, same
reason) and counted. A reader samples all the time, one statement per sample.

Goal: at every observed point each (model, alias) has exactly one holder (<= 1 and never 0
once set), each model exactly one version in stage production; the alias history holds
exactly one event per acknowledged move and none for a refused, unchanged or retried attempt."""

from __future__ import annotations

import functools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pgmlops
import psycopg
import pytest

from .test_crash import record

MODELS = ("alias_m0", "alias_m1")
ALIASES = ("champion", "production", "staging")
VERSIONS = 4

SAMPLE = """
select m.name, x.alias,
       (select count(*) from mlops.model_aliases a where a.model_id = m.id and a.alias = x.alias) as holders,
       (select count(*) from mlops.model_versions v where v.model_id = m.id and v.status = 'production') as production,
       (select count(*) from mlops.get_version(m.name, x.alias)) as resolved
  from mlops.models m cross join (values ('champion'), ('production'), ('staging')) x(alias)
 where m.name = any(%s::text[])"""


def setup(url: str) -> None:
    with pgmlops.connect(url) as c:
        for m in MODELS:
            c.registry.register(m)
            for v in range(VERSIONS):
                c.registry.log_version(m, f"artifact {m} {v}".encode())
            for alias in ALIASES:
                c.registry.set_alias(m, alias, 1, reason="initial")


def move(cl: pgmlops.Client, kind: str, model: str, alias: str, version: int, reason: str) -> bool:
    """One alias move or rollback; True when it recorded a history event."""
    if kind == "set":
        return cl.registry.set_alias(model, alias, version, reason=reason) is not None
    cl.registry.rollback(model, alias, reason=reason)
    return True


class Mover(threading.Thread):
    def __init__(self, url: str, index: int, ops: int, serializable: bool, stop: threading.Event) -> None:
        super().__init__(name=f"mover-{index}", daemon=True)
        self.url, self.index, self.ops, self.serializable, self.stop = url, index, ops, serializable, stop
        self.results: list[tuple[str, str, bool]] = []  # (reason, kind, recorded an event)
        self.retries = 0  # transactions the client replayed
        self.refused = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _run(self) -> None:
        rng = random.Random(1000 + self.index)
        with pgmlops.connect(self.url) as c:
            for i in range(self.ops):
                reason = f"rel9_{self.index}_{i}"
                model, alias = rng.choice(MODELS), rng.choice(ALIASES)
                kind = "rollback" if rng.random() < 0.15 else "set"
                version = rng.randint(1, VERSIONS)
                op = functools.partial(move, kind=kind, model=model, alias=alias, version=version, reason=reason)
                try:
                    # Serializable movers go through the client's replay of whole transactions
                    # (40001 / 40P01), which counts what it retried; the others run in autocommit.
                    moved = c.in_transaction(op, attempts=1000) if self.serializable else op(c)
                except psycopg.errors.ObjectNotInPrerequisiteState:  # rollback with no previous version
                    self.refused += 1
                    moved = False
                self.results.append((reason, kind, moved))
            self.retries = c.retries


class Reader(threading.Thread):
    def __init__(self, url: str, stop: threading.Event) -> None:
        super().__init__(name="reader", daemon=True)
        self.url, self.stop = url, stop
        self.samples = 0
        self.violations: list[tuple[Any, ...]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not self.stop.is_set():
                    self.samples += 1
                    try:
                        rows = conn.execute(SAMPLE, (list(MODELS),)).fetchall()
                    except psycopg.errors.NoDataFound as exc:  # get_version found no holder
                        self.violations.append(("get_version", str(exc).splitlines()[0]))
                        continue
                    self.violations.extend(row for row in rows if row[2:] != (1, 1, 1))
        except BaseException as exc:
            self.error = exc


def run_moves(url: str, threads: int, ops: int) -> dict[str, Any]:
    setup(url)
    stop = threading.Event()
    movers = [Mover(url, i, ops, serializable=i % 2 == 1, stop=stop) for i in range(threads)]
    reader = Reader(url, stop)
    started = time.monotonic()
    reader.start()
    for m in movers:
        m.start()
    for m in movers:
        m.join()
    stop.set()
    reader.join()
    seconds = time.monotonic() - started
    errors = [repr(t.error) for t in movers if t.error is not None] + ([repr(reader.error)] if reader.error else [])
    with psycopg.connect(url, autocommit=True) as conn:
        events: Counter[str] = Counter(dict(conn.execute("select reason, count(*) from mlops.alias_events "
                                           "where reason like 'rel9\\_%%' group by 1").fetchall()))
        final = conn.execute(SAMPLE, (list(MODELS),)).fetchall()
    acked = [r for m in movers for r in m.results]
    expected = Counter({reason: 1 for reason, _, moved in acked if moved})
    return {"threads": threads, "ops_per_thread": ops, "seconds": round(seconds, 1), "errors": errors,
            "acknowledged_ops": len(acked), "acknowledged_moves": sum(expected.values()),
            "history_events": sum(events.values()), "history_mismatches": sum((events - expected).values())
            + sum((expected - events).values()),
            "serialization_failures_retried_by_client": sum(m.retries for m in movers),
            "rollbacks_refused": sum(m.refused for m in movers), "reader_samples": reader.samples,
            "violations": len(reader.violations), "first_violations": [list(v) for v in reader.violations[:3]],
            "final_ok": all(r[2:] == (1, 1, 1) for r in final)}


def check(figures: dict[str, Any]) -> None:
    assert figures["errors"] == []
    assert figures["acknowledged_ops"] == figures["threads"] * figures["ops_per_thread"]
    assert (figures["violations"], figures["first_violations"]) == (0, [])
    assert figures["history_mismatches"] == 0 and figures["history_events"] == figures["acknowledged_moves"]
    assert figures["final_ok"] and figures["reader_samples"] > 10


def test_never_two_champions_fast(database_factory: Callable[..., str]) -> None:
    figures = run_moves(database_factory("extension", prefix="alias_fast"), threads=8, ops=60)
    record("alias_moves_fast", **figures)
    check(figures)


@pytest.mark.slow
def test_never_two_champions_8x1000(database_factory: Callable[..., str]) -> None:
    figures = run_moves(database_factory("extension", prefix="alias_slow"), threads=8, ops=1000)
    record("alias_moves_8x1000", **figures)
    check(figures)


def test_reader_detects_a_missing_holder(database_factory: Callable[..., str]) -> None:
    """The sample can fail: with an alias deleted (0 holders) the reader reports it."""
    url = database_factory("extension", prefix="alias_check")
    setup(url)
    with pgmlops.connect(url) as c:
        c.registry.delete_alias(MODELS[0], "champion")
    stop = threading.Event()
    reader = Reader(url, stop)
    reader.start()
    time.sleep(0.3)
    stop.set()
    reader.join()
    assert reader.error is None and reader.samples > 0 and len(reader.violations) == reader.samples
    assert all(v[0] == "get_version" and "champion" in v[1] for v in reader.violations)
