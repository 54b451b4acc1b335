"""Streaming replica (issue 10 item 14; docs/replication.md): a hot standby started by the test
(pg_basebackup -R from a primary of its own, streaming over the Unix socket);
``pgmlops.connect(dsn, read_dsn=...)`` serves the read paths from it; every read function works
there and no STABLE/IMMUTABLE function writes; ``mlops.replication_status`` shows the lag on
both sides; with ``synchronous_commit = remote_apply`` and the standby in
``synchronous_standby_names``, kill -9 of the primary then ``pg_ctl promote`` loses no
acknowledged prediction."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pgmlops
import psycopg
import pytest
from pgmlops.server import PG_BIN, LocalServer

from . import crashlib, replica, sqlgen
from .replica import DIM, SYNC, make_standby, wait_replayed
from .test_crash import record

pytestmark = pytest.mark.slow  # a primary and a standby of their own: about 60 s on 2 shared cores


@dataclass
class Pair:
    primary: LocalServer
    standby: LocalServer

    @property
    def primary_url(self) -> str:
        return self.primary.url()

    @property
    def standby_url(self) -> str:
        return self.standby.url()


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    base = Path(tempfile.mkdtemp(prefix="pgmlops-rel-replica-", dir=os.environ.get("PGMLOPS_TEST_TMP", "/tmp")))
    base.chmod(0o755)
    primary = LocalServer(base / "primary", settings=(("max_connections", "50"), ("shared_buffers", "64MB"),
                                                      ("cluster_name", "'primary'"),
                                                      ("restart_after_crash", "off")))
    standby: LocalServer | None = None
    try:
        primary.start()
        replica.populate(primary.url())
        standby = make_standby(primary, base / "standby")
        wait_replayed(primary.url(), standby.url())
        yield Pair(primary, standby)
    finally:
        for s in (standby, primary):
            if s is not None:
                s.destroy()
        for d in (base / "standby", base / "primary"):
            if d.exists() and not any(d.iterdir()):
                d.rmdir()
        if base.exists() and not any(base.iterdir()):
            base.rmdir()


NOW_DEPENDENT = ("days_running",)  # computed from now(): differs between two calls anyway


def _norm(value: Any) -> str:
    if isinstance(value, pd.DataFrame):
        value = value.drop(columns=[c for c in NOW_DEPENDENT if c in value.columns])
        return str(value.to_json(orient="records", date_format="iso", default_handler=str))
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in NOW_DEPENDENT}
    return json.dumps(value, default=str, sort_keys=True)


def _read_calls(query: np.ndarray) -> dict[str, Callable[[pgmlops.Client], Any]]:
    """Every client read path, with the arguments of the populated database."""
    m, e, g = replica.MODEL, replica.EXPERIMENT, replica.GROUP
    since = datetime(2026, 1, 1, tzinfo=UTC)
    return {
        "features.online": lambda c: c.features.online(replica.ENTITY, [3, 1, 99], [f"{g}:amount", f"{g}:seg"]),
        "registry.get_version": lambda c: c.registry.get_version(m, "champion"),
        "registry.load": lambda c: c.registry.load(m, "champion"),
        "registry.history": lambda c: c.registry.history(m),
        "registry.versions": lambda c: c.registry.versions(m),
        "registry.compare_versions": lambda c: c.registry.compare_versions(m, 1, 2),
        "predictions.performance": lambda c: c.predictions.performance(m, since=since, bucket="1 day"),
        "predictions.latency_p95": lambda c: c.predictions.latency_p95(m, 1, since),
        "predictions.accuracy": lambda c: c.predictions.accuracy(m, 1, since),
        "experiments.results": lambda c: c.experiments.results(e),
        "experiments.get": lambda c: c.experiments.get(e),
        "drift.last_run": lambda c: c.drift.last_run(replica.MONITOR),
        "drift.results": lambda c: c.drift.results(replica.MONITOR),
        "embeddings.similar": lambda c: c.embeddings.similar(SYNC, query, k=5),
        "embeddings.similar(filter)": lambda c: c.embeddings.similar(SYNC, query, k=5, filter={}),
        "embeddings.find_duplicates": lambda c: c.embeddings.find_duplicates(SYNC, threshold=0.5, k=3),
        "embeddings.dedupe": lambda c: c.embeddings.dedupe(SYNC, threshold=0.99, k=3),
    }


def test_client_read_paths_are_served_by_the_standby(pair: Pair) -> None:
    wait_replayed(pair.primary_url, pair.standby_url)
    query = np.random.default_rng(11).normal(size=DIM)
    failures: dict[str, str] = {}
    differ: list[str] = []
    with pgmlops.connect(pair.primary_url) as ref, \
            pgmlops.connect(pair.primary_url, read_dsn=pair.standby_url) as client:
        row = client.read_conn.execute("select pg_catalog.pg_is_in_recovery() as r").fetchone()
        assert row is not None and row["r"] is True
        # the online lookup's SQL is built once by mlops.online_query on the primary (cached until
        # a feature group changes); the lookups themselves run on the read connection
        client.features.online(replica.ENTITY, [1], [f"{replica.GROUP}:amount", f"{replica.GROUP}:seg"])
        client.conn.close()  # from here on, a read path that still uses the primary raises
        for name, call in _read_calls(query).items():
            try:
                got = call(client)
            except Exception as exc:
                failures[name] = f"{type(exc).__name__}: {exc}"
                continue
            if _norm(got) != _norm(call(ref)):
                differ.append(name)
    record("test_replica_reads", read_paths=len(_read_calls(query)), failed=failures, differ=differ)
    assert failures == {}
    assert differ == []


def test_without_read_dsn_reads_use_the_primary(pair: Pair) -> None:
    with pgmlops.connect(pair.primary_url) as client:
        assert client.read_conn is client.conn
        row = client.read_conn.execute("select pg_catalog.pg_is_in_recovery() as r").fetchone()
        assert row is not None and row["r"] is False


def _sqlstate(conn: psycopg.Connection[Any], query: Any, params: Any = None) -> str | None:
    try:
        with conn.transaction():
            conn.execute(query, params).fetchall()
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def test_writes_need_the_primary(pair: Pair) -> None:
    """What docs/replication.md lists as primary-only: on the standby these fail with 25006
    (read-only transaction); the sticky part of assign is a read and works there."""
    m, e = replica.MODEL, replica.EXPERIMENT
    writes = {
        "log_prediction": ("select mlops.log_prediction(model => %s::text, request_id => 'standby_1'::text, "
                           "version => 1, score => 0.5::float8)", (m,)),
        "log_feedback": ("select mlops.log_feedback(request_id => 'rep_req_0'::text, correct => true)", None),
        "assign (first exposure)": ("select mlops.assign(%s::text, 'never_seen_unit'::text)", (e,)),
        "set_alias": ("select mlops.set_alias(model => %s::text, alias => 'champion'::text, version => 1)", (m,)),
        "write_features": ("select mlops.write_features(%s::text, %s::jsonb)",
                           (replica.GROUP, json.dumps([{f"{replica.ENTITY}_id": 1,
                                                             "event_ts": "2026-02-01T00:00:00Z", "amount": 1}]))),
    }
    reads = {
        "assign (already assigned unit)": ("select mlops.assign(%s::text, %s::text)", (e, replica.UNITS[0])),
        "route (already assigned unit)": ("select mlops.route(%s::text, %s::text)", (e, replica.UNITS[0])),
        "get_online_features": ("select * from mlops.get_online_features(%s::text, array['1','2']::text[], "
                                "array[%s]::text[])", (replica.ENTITY, f"{replica.GROUP}:amount")),
    }
    with psycopg.connect(pair.primary_url, autocommit=True) as p:  # the writes themselves are valid
        for name, (q, params) in writes.items():
            with p.transaction(force_rollback=True):
                assert _sqlstate(p, q, params) is None, name
    with psycopg.connect(pair.standby_url, autocommit=True) as s:
        got_writes = {name: _sqlstate(s, q, params) for name, (q, params) in writes.items()}
        got_reads = {name: _sqlstate(s, q, params) for name, (q, params) in reads.items()}
    record("test_replica_writes", writes=got_writes, reads=got_reads)
    assert got_writes == dict.fromkeys(writes, "25006")
    assert got_reads == dict.fromkeys(reads)


def test_every_function_on_the_standby(pair: Pair) -> None:
    """Every mlops function called on the standby (sample arguments, then NULLs): no STABLE or
    IMMUTABLE function needs the primary; the VOLATILE ones that do are recorded for the docs."""
    with psycopg.connect(pair.standby_url, autocommit=True) as s:
        volatility: dict[int, str] = dict(s.execute(
            "select p.oid::bigint, p.provolatile::text from pg_catalog.pg_proc p "
            "where p.pronamespace = 'mlops'::regnamespace").fetchall())
        s.execute("set statement_timeout = 5000")
        need_primary: dict[str, str] = {}
        calls = 0
        for f in sqlgen.functions(s):
            for nulls in (False, True):
                calls += 1
                state = _sqlstate(s, sqlgen.call_sql(f, nulls))
                if state == "25006":
                    need_primary[f.signature] = volatility[f.oid]
        views = [r[0] for r in s.execute("select pg_catalog.format('%I.%I', schemaname, viewname) "
                                         "from pg_catalog.pg_views where schemaname = 'mlops' order by 1")]
        view_errors = {v: st for v in views
                       if (st := _sqlstate(s, f"select * from {v} limit 5")) is not None}
    record("test_replica_functions", calls=calls, need_primary=sorted(need_primary), views=len(views),
           view_errors=view_errors)
    assert {sig: v for sig, v in need_primary.items() if v != "v"} == {}
    assert view_errors == {}
    assert calls > 100 and len(views) > 10


def test_replication_status_view(pair: Pair) -> None:
    wait_replayed(pair.primary_url, pair.standby_url)
    with psycopg.connect(pair.primary_url, autocommit=True) as p:
        rows = p.execute("select role, standby, state, sync_state, replay_lag_bytes, time from "
                         "mlops.replication_status").fetchall()
        assert len(rows) == 1
        role, name, state, sync_state, lag, at = rows[0]
        assert (role, name, state) == ("primary", "standby1", "streaming")
        assert sync_state == "async" and lag is not None and lag >= 0 and at is not None
        p.execute("drop role if exists rel_dashboard")
        p.execute("create role rel_dashboard login in role mlops_reader")
    wait_replayed(pair.primary_url, pair.standby_url)
    with psycopg.connect(pair.standby_url, autocommit=True) as s:
        rows = s.execute("select role, standby, state, replay_lag_bytes, replay_lag_seconds from "
                         "mlops.replication_status").fetchall()
        assert len(rows) == 1 and rows[0][:3] == ("standby", "standby1", "streaming")
        assert rows[0][3] is not None and rows[0][3] >= 0 and rows[0][4] is not None
    reader = pair.primary.url().replace("postgres@", "rel_dashboard@")
    with psycopg.connect(reader, autocommit=True) as r:  # reader may select; details need pg_monitor
        assert r.execute("select role, state from mlops.replication_status").fetchall() == [("primary", None)]
    with psycopg.connect(pair.primary_url, autocommit=True) as p:
        p.execute("grant pg_monitor to rel_dashboard")
    with psycopg.connect(reader, autocommit=True) as r:
        assert r.execute("select role, state from mlops.replication_status").fetchall() == [("primary", "streaming")]
    record("test_replica_status", standby_row=[str(x) for x in rows[0]])


def test_failover_loses_no_acknowledged_prediction(pair: Pair, tmp_path: Path) -> None:
    """Last in the module: it kills the primary."""
    with psycopg.connect(pair.primary_url, autocommit=True) as p:
        p.execute("alter system set synchronous_standby_names = 'standby1'")
        p.execute("alter system set synchronous_commit = 'remote_apply'")
        p.execute("select pg_catalog.pg_reload_conf()")
    deadline = time.monotonic() + 30
    with psycopg.connect(pair.primary_url, autocommit=True) as p:
        while p.execute("select sync_state from pg_catalog.pg_stat_replication").fetchone() != ("sync",):
            assert time.monotonic() < deadline, "standby never became synchronous"
            time.sleep(0.1)
        kinds = crashlib.prepare(pair.primary_url)
        assert "prediction" in kinds
        assert p.execute("show synchronous_commit").fetchone() == ("remote_apply",)
    ack_dir = tmp_path / "acks"
    ack_dir.mkdir()
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    writers = [ctx.Process(target=crashlib.writer, args=(pair.primary_url, "prediction", str(ack_dir / f"{i}.ack"),
                                                         stop), daemon=True) for i in range(3)]
    for w in writers:
        w.start()
    time.sleep(4)
    crashlib.kill_postmaster(pair.primary)  # the writers keep trying: nothing acknowledged from here on
    started = time.monotonic()
    pair.standby._run(str(PG_BIN / "pg_ctl"), "-D", str(pair.standby.data_dir), "promote", "-w", "-t", "60")
    promote_s = time.monotonic() - started
    stop.set()
    for w in writers:
        w.join(30)
    acks = crashlib.acknowledged(ack_dir)
    lost = crashlib.missing(pair.standby_url, acks)
    with psycopg.connect(pair.standby_url, autocommit=True) as s:
        assert s.execute("select pg_catalog.pg_is_in_recovery()").fetchone() == (False,)
        s.execute("select mlops.log_prediction(model => 'crash_m', request_id => 'after_promote'::text, "
                  "version => 1, score => 0.5::float8)")  # the promoted standby takes writes
    record("test_replica_failover", acknowledged=len(acks), missing=len(lost), promote_seconds=round(promote_s, 2))
    assert len(acks) > 20
    assert lost == []
