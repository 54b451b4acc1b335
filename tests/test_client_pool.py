"""pgmlops.connect_pool: Clients on pooled connections, shared by many threads, against a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import pgmlops
import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.pq import TransactionStatus
from psycopg_pool import PoolClosed, PoolTimeout

from .test_predictions import register

Conn = psycopg.Connection[Any]
APP = "pgmlops-pool-test"


@pytest.fixture(scope="module", autouse=True)
def models(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        register(c, "pooled", versions=2)


@pytest.fixture
def app_dsn(dsn: str) -> str:
    """The module's database, its sessions named so that pg_stat_activity can count them."""
    return make_conninfo(dsn, application_name=APP)


def sessions(conn: Conn) -> int:
    row = conn.execute("select count(*) from pg_catalog.pg_stat_activity where application_name = %s::text",
                       (APP,)).fetchone()
    assert row is not None
    return int(row[0])


def wait_for(check: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_threads_log_and_read_back_within_max_size(app_dsn: str, conn: Conn) -> None:
    threads, checkouts, max_size = 16, 25, 4
    peak_sessions, peak_size, pids = 0, 0, set()
    stop = threading.Event()

    def watch() -> None:  # samples the server's and the pool's view of how many connections there are
        nonlocal peak_sessions, peak_size
        with psycopg.connect(app_dsn.replace(APP, "pool-watch"), autocommit=True) as c:
            while not stop.is_set():
                peak_sessions = max(peak_sessions, sessions(c))
                peak_size = max(peak_size, pool.stats()["pool_size"])
                time.sleep(0.002)

    def work(t: int) -> list[int]:
        ids = []
        for i in range(checkouts):
            with pool.client() as client:
                pid = client.predictions.log("pooled", request_id=f"pool-{t}-{i}", version=1, label=f"l{t}",
                                             score=i / checkouts)
                row = client.read_conn.execute("select request_id, label, pg_catalog.pg_backend_pid() as pid"
                                               " from mlops.predictions where id = %s::bigint", (pid,)).fetchone()
                assert row is not None and row["request_id"] == f"pool-{t}-{i}" and row["label"] == f"l{t}"
                pids.add(row["pid"])
                ids.append(pid)
        return ids

    with pgmlops.connect_pool(app_dsn, min_size=2, max_size=max_size) as pool:
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with ThreadPoolExecutor(threads) as ex:
                ids = [i for chunk in ex.map(work, range(threads)) for i in chunk]
        finally:
            stop.set()
            watcher.join()
        stats = pool.stats()
    assert len(ids) == len(set(ids)) == threads * checkouts
    row = conn.execute("select count(*), count(distinct label) from mlops.predictions"
                       " where request_id like 'pool-%%'").fetchone()
    assert row == (threads * checkouts, threads)
    assert 2 <= len(pids) <= max_size and 1 <= peak_sessions <= max_size and peak_size <= max_size
    assert stats["requests_num"] >= threads * checkouts and stats.get("requests_queued", 0) > 0  # threads waited
    wait_for(lambda: sessions(conn) == 0)  # closed with the pool


def test_connection_left_dirty_is_reset_before_the_next_checkout(dsn: str, conn: Conn) -> None:
    tenant_dsn = make_conninfo(dsn, options="-c mlops.tenant=acme")  # settings of the DSN survive the reset
    with pgmlops.connect_pool(tenant_dsn, max_size=1) as pool:
        with pool.client() as client:
            pid = client.conn.info.backend_pid
            client.conn.execute("set statement_timeout = '1234ms'")  # session settings, then a transaction
            client.conn.execute("set mlops.tenant = 'someone'")
            client.conn.execute("set role mlops_reader")
            client.conn.autocommit = False
            client.conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
            client.conn.read_only = True
            client.conn.execute("select 1")
            assert client.conn.info.transaction_status == TransactionStatus.INTRANS
        with pool.client() as client:
            assert client.conn.info.backend_pid == pid  # the same connection, clean again
            assert client.conn.info.transaction_status == TransactionStatus.IDLE
            assert client.conn.autocommit and client.conn.isolation_level is None and client.conn.read_only is None
            row = client.conn.execute("select current_setting('statement_timeout') as st, current_user = session_user"
                                      " as own, coalesce(current_setting('mlops.tenant', true), '') as tenant,"
                                      " current_setting('transaction_isolation') as iso").fetchone()
            assert row == {"st": "0", "own": True, "tenant": "acme", "iso": "read committed"}

            client.conn.autocommit = False  # a prediction logged in a transaction never committed
            client.predictions.log("pooled", request_id="pool-uncommitted", version=1)
        with pytest.raises(psycopg.errors.DivisionByZero), pool.client() as client:  # a failed transaction
            client.conn.autocommit = False
            client.conn.execute("select 1 / 0")
        with pool.client() as client:
            assert client.conn.info.backend_pid == pid
            assert client.conn.info.transaction_status == TransactionStatus.IDLE and client.conn.autocommit
            assert client.predictions.log("pooled", request_id="pool-after-error", version=1) > 0
    row = conn.execute("select count(*) filter (where request_id = 'pool-uncommitted'),"
                       " count(*) filter (where request_id = 'pool-after-error') from mlops.predictions").fetchone()
    assert row == (0, 1)


def test_in_transaction_and_broken_connection(dsn: str, conn: Conn) -> None:
    with pgmlops.connect_pool(dsn, max_size=1) as pool:
        with pool.client() as client:
            n = client.in_transaction(lambda c: c.predictions.log("pooled", request_id="pool-tx", version=2))
            assert n > 0 and client.conn.info.transaction_status == TransactionStatus.IDLE
            pid = client.conn.info.backend_pid
        wait_for(lambda: pool.stats()["pool_available"] == 1)  # reset and back in the pool: killed there
        conn.execute("select pg_catalog.pg_terminate_backend(%s::integer)", (pid,))
        wait_for(lambda: conn.execute("select count(*) from pg_catalog.pg_stat_activity where pid = %s::integer",
                                      (pid,)).fetchone() == (0,))
        with pytest.raises(psycopg.OperationalError), pool.client() as client:
            client.conn.execute("select 1")  # the pool does not check idle connections: this one is dead...
        with pool.client() as client:  # ...and was discarded when it came back
            assert client.conn.info.backend_pid != pid
            assert client.registry.get_version("pooled", 2).version == 2


def test_close_gives_back_and_the_client_is_detached(dsn: str) -> None:
    with pgmlops.connect_pool(dsn, min_size=1, max_size=1, timeout=5) as pool:
        with pool.client() as client:
            conn = client.conn
            with pytest.raises(PoolTimeout), pool.client(timeout=0.2):  # the only connection is out
                pass
            client.close()  # given back early (reset by a pool worker), not closed
            wait_for(lambda: pool.stats()["pool_available"] == 1)
            assert not conn.closed
            with pytest.raises(pgmlops.PgmlopsError, match="back to its pool"):
                client.version()
            with pool.client() as other:  # free again
                assert other.conn is conn and other.version()
        wait_for(lambda: pool.stats()["pool_available"] == 1)
        assert not conn.closed and pool.stats().get("returns_bad", 0) == 0  # the second close did nothing
        with pytest.raises(pgmlops.PgmlopsError):
            client.read_conn.execute("select 1")
    assert pool.closed and conn.closed
    with pytest.raises(PoolClosed), pool.client():
        pass


def test_read_dsn_takes_a_second_pool_on_first_read(dsn: str, app_dsn: str, conn: Conn) -> None:
    with pgmlops.connect_pool(dsn, read_dsn=app_dsn, min_size=0, max_size=2) as pool:
        with pool.client() as client:
            client.predictions.log("pooled", request_id="pool-read", version=1)
            assert pool.stats().get("read_requests_num", 0) == 0  # nothing read yet: no read connection taken
            assert client.read_conn is client.read_conn and client.read_conn is not client.conn
            assert client.registry.get_version("pooled", 1).version == 1
            row = client.read_conn.execute("select current_setting('application_name') as app,"
                                           " count(*) as n from mlops.predictions where request_id = 'pool-read'"
                                           ).fetchone()
            assert row == {"app": APP, "n": 1}
            assert sessions(conn) == 1
        wait_for(lambda: pool.stats()["read_pool_available"] == 1)
        stats = pool.stats()
        assert stats["read_requests_num"] == 1 and stats["read_pool_available"] == stats["read_pool_size"] == 1
        assert stats["pool_available"] == stats["pool_size"] == 1


def test_online_lookups_share_one_cache_and_listen_connection(dsn: str) -> None:
    with pgmlops.connect(dsn) as setup:
        setup.features.create_entity("shopper")
        setup.features.create_group("basket", "shopper", {"n": "int8", "emb": "vector(2)"})
        setup.features.write("basket", pd.DataFrame({"shopper_id": range(1, 9), "event_ts": pd.Timestamp.now("UTC"),
                                                     "n": range(10, 18), "emb": [[float(k), 1.0] for k in range(8)]}),
                             progress=False)

    def lookup(k: int) -> tuple[Any, Any, Any]:
        with pool.client() as client:
            raw = client.features.online_raw("shopper", [1 + k % 8], ["basket:n", "basket:emb"])[0]
            df = client.features.online("shopper", [1, 2], ["basket:n"])
            assert list(df["n"]) == [10, 11]
            return raw["n"], raw["emb"].to_list(), client.features._watch

    with pgmlops.connect_pool(dsn, min_size=4, max_size=4) as pool:
        with ThreadPoolExecutor(8) as ex:
            results = list(ex.map(lookup, range(200)))
        assert {(n, tuple(emb)) for n, emb, _ in results} == {(10 + k, (float(k), 1.0)) for k in range(8)}
        watches = {id(w) for _, _, w in results}
        cache = pool._online_cache()
        assert watches == {id(cache.watch)} and cache.watch.conn is not None  # one LISTEN connection
        assert len(cache.plans) == 2 and 1 <= len(cache.prepared) <= 4  # built once, prepared per connection
    assert cache.watch.conn is None  # closed with the pool


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"min_size": 5, "max_size": 2}, ValueError, r"max_size \(2\) must be at least min_size \(5\)"),
    ({"min_size": 0, "max_size": 0}, ValueError, "max_size"),
    ({"min_size": -1}, ValueError, "min_size must be 0 or more"),
    ({"timeout": 0}, ValueError, "timeout must be positive"),
    ({"configure": print}, TypeError, "configure cannot be given"),
])
def test_bad_arguments(dsn: str, kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        pgmlops.connect_pool(dsn, **kwargs)


def test_dsn_resolution_and_unreachable_server(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PGMLOPS_DSN", dsn)
    with pgmlops.connect_pool(min_size=0, name="from-env") as pool, pool.client() as client:
        assert client.dsn == dsn and client.version() and pool.stats()["pool_size"] == 1
    with pytest.raises(PoolTimeout):  # min_size connections are opened before connect_pool returns
        pgmlops.connect_pool("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1", timeout=0.5)


@pytest.fixture(autouse=True)
def _no_leaked_pool_threads() -> Iterator[None]:
    before = {t.ident for t in threading.enumerate()}
    yield
    wait_for(lambda: not [t for t in threading.enumerate() if t.ident not in before and t.is_alive()
                          and ("-worker-" in t.name or t.name.endswith("-scheduler"))])
