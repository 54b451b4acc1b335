"""Connection and the Client: one entry point that wraps the SQL API by capability.

``pgmlops.connect()`` resolves the database from ``dsn``, then ``PGMLOPS_DSN``, then
``DATABASE_URL``, then the local embedded cluster. Connecting never installs anything.
``pgmlops.connect_pool()`` (pool.py) hands out Clients on pooled connections, configured by the
same :func:`configure_connection`.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.rows import dict_row

from .errors import PgmlopsError

if TYPE_CHECKING:
    from .drift import Drift
    from .embeddings import Embeddings
    from .experiments import Experiments
    from .feature_store import FeatureStore
    from .pool import ClientPool
    from .predictions import Predictions
    from .registry import Registry

Connection = psycopg.Connection[Any]
T = TypeVar("T")


def resolve_dsn(dsn: str | None = None) -> str:
    """The DSN to use: explicit, PGMLOPS_DSN, DATABASE_URL, or the running local cluster."""
    for candidate in (dsn, os.environ.get("PGMLOPS_DSN"), os.environ.get("DATABASE_URL")):
        if candidate:
            return candidate
    from .server import local_server

    server = local_server()
    if not server.running():
        raise PgmlopsError("no database given (--dsn, PGMLOPS_DSN or DATABASE_URL) and the local cluster "
                           f"under {server.home} is not running: run `pgmlops server start`")
    return server.url()


def reset_session_attributes(conn: Connection, autocommit: bool = True) -> None:
    """Put back the connection attributes every pgmlops connection starts with (client side only,
    no round trip; the connection must be idle): autocommit, dict rows, the server's default
    isolation level, read/write mode and deferrability."""
    conn.autocommit = autocommit
    conn.row_factory = dict_row
    conn.isolation_level = None
    conn.read_only = None
    conn.deferrable = None


def configure_connection(conn: Connection, autocommit: bool = True) -> None:
    """Configure a new connection as every pgmlops connection is (:func:`open_connection` and the
    pools of ``pgmlops.connect_pool`` both call it): the attributes of
    :func:`reset_session_attributes`, and pgvector's types registered when the extension exists."""
    reset_session_attributes(conn, autocommit)
    if conn.execute("select 1 from pg_catalog.pg_extension where extname = 'vector'").fetchone():
        from pgvector.psycopg import register_vector

        register_vector(conn)


def open_connection(dsn: str, autocommit: bool = True) -> Connection:
    """A psycopg connection with pgvector's types registered when the extension exists."""
    conn: Connection = psycopg.connect(dsn)
    configure_connection(conn, autocommit)
    return conn


class Client:
    """pgmlops client: ``client.features``, ``.registry``, ``.predictions``, ``.experiments``,
    ``.drift`` and ``.embeddings`` wrap the SQL functions of each capability."""

    def __init__(self, dsn: str, read_dsn: str | None = None) -> None:
        self.dsn = dsn
        self.read_dsn = read_dsn
        self.retries = 0  # transactions replayed by in_transaction after 40001 / 40P01
        self._pool: ClientPool | None = None  # set on the Clients of ClientPool.client()
        self._lock = threading.Lock()
        self._read_conn: Connection | None = None
        self._conn: Connection | None = open_connection(dsn)

    @classmethod
    def _pooled(cls, pool: ClientPool, conn: Connection) -> Client:
        """A Client on ``conn``, a connection of ``pool`` (``ClientPool.client()`` makes them)."""
        client = cls.__new__(cls)
        client.dsn, client.read_dsn, client.retries = pool.dsn, pool.read_dsn, 0
        client._pool, client._lock, client._read_conn, client._conn = pool, threading.Lock(), None, conn
        return client

    @property
    def conn(self) -> Connection:
        """Connection to the primary (``dsn``): every write goes through it."""
        conn = self._conn
        if conn is None:
            raise PgmlopsError("this Client's connections went back to its pool when its "
                               "`with pool.client()` block ended: take another one")
        return conn

    @property
    def read_conn(self) -> Connection:
        """Connection for read-only paths: the hot standby when ``read_dsn`` was given, else ``conn``.

        Served from it: online feature lookups, registry lookups (get_version, load, history, versions,
        compare_versions), prediction monitoring, experiment results, drift results and similarity
        search. Every write, and ``assign`` (a unit's first exposure inserts), uses ``conn`` (the
        primary). A standby shows a commit once it has replayed it: see docs/replication.md.
        Opened (or, on a pooled Client, taken from the read pool) on first use."""
        read = self._read_conn
        if read is not None:
            return read
        conn = self.conn
        if not self.read_dsn:
            return conn
        with self._lock:
            if self._read_conn is None:
                self._read_conn = self._pool._read_connection() if self._pool else open_connection(self.read_dsn)
            return self._read_conn

    def in_transaction(self, work: Callable[[Client], T], *,
                       isolation: psycopg.IsolationLevel | None = psycopg.IsolationLevel.SERIALIZABLE,
                       attempts: int = 10, backoff_seconds: float = 0.01) -> T:
        """Run ``work(client)`` as one transaction at ``isolation`` and replay the whole of it when
        PostgreSQL reports a serialization failure (40001) or a deadlock (40P01); ``client.retries``
        counts the replays. Only the transaction as a whole can be retried safely, so single calls
        outside it are never replayed behind the caller's back.

        Example: ``client.in_transaction(lambda c: c.registry.set_alias("churn", "production", 3))``."""
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        previous = self.conn.isolation_level
        self.conn.isolation_level = isolation
        try:
            for attempt in range(1, attempts + 1):
                try:
                    with self.conn.transaction():
                        return work(self)
                except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
                    if attempt == attempts:
                        raise
                    self.retries += 1
                    time.sleep(backoff_seconds * attempt * random.random())
        finally:
            self.conn.isolation_level = previous
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connections; a pooled Client gives them back to its pool instead (once)."""
        if "features" in self.__dict__:
            self.features.close()
        if self._pool is not None:
            self._pool._release(self)
            return
        if self._read_conn is not None:
            self._read_conn.close()
        if self._conn is not None:
            self._conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def version(self) -> str:
        row = self.conn.execute("select mlops.version() as v").fetchone()
        assert row is not None
        return str(row["v"])

    def info(self) -> dict[str, Any]:
        row = self.conn.execute("select mlops.info() as i").fetchone()
        assert row is not None
        return dict(row["i"])

    def python_info(self) -> dict[str, Any]:
        """The server's Python version and the versions of the ML modules it can import (pgmlops_python)."""
        row = self.conn.execute("select mlops.python_info() as i").fetchone()
        assert row is not None
        return dict(row["i"])

    def resolve_alerts(self, source: str, subject: str) -> int:
        """Resolve every open alert of ``source`` about ``subject``; returns how many."""
        row = self.conn.execute("select mlops.resolve_alerts(source => %s::text, subject => %s::text) as n",
                                (source, subject)).fetchone()
        assert row is not None
        return int(row["n"])

    # -- multi-tenancy (docs/tenancy.md)
    def enable_tenancy(self, owner: str, existing_tenant: str = "default") -> dict[str, Any]:
        """Make the database tenant-scoped (one-way; superuser, ``owner`` a nologin non-superuser role);
        returns the summary of what changed."""
        row = self.conn.execute(
            "select mlops.enable_tenancy(owner => %s::regrole, existing_tenant => %s::text) as s",
            (owner, existing_tenant)).fetchone()
        assert row is not None
        return dict(row["s"])

    def add_tenant_role(self, tenant: str, role: str) -> None:
        """Let members of ``role`` act for ``tenant`` (set mlops.tenant); the owner's call."""
        self.conn.execute("select mlops.add_tenant_role(tenant => %s::text, role => %s::regrole)", (tenant, role))

    def current_tenant(self) -> str | None:
        """The tenant this session acts for, or None (not set, or not allowed)."""
        row = self.conn.execute("select mlops.current_tenant() as t").fetchone()
        assert row is not None
        return None if row["t"] is None else str(row["t"])

    def tenancy_enabled(self) -> bool:
        """Whether ``enable_tenancy`` has run in this database."""
        row = self.conn.execute("select mlops.tenancy_enabled() as b").fetchone()
        assert row is not None
        return bool(row["b"])

    @cached_property
    def features(self) -> FeatureStore:
        from .feature_store import FeatureStore

        # a pooled Client shares its pool's lookup cache and LISTEN connection (see ClientPool)
        return FeatureStore(self, self._pool._online_cache() if self._pool else None)

    @cached_property
    def registry(self) -> Registry:
        from .registry import Registry

        return Registry(self)

    @cached_property
    def predictions(self) -> Predictions:
        from .predictions import Predictions

        return Predictions(self)

    @cached_property
    def experiments(self) -> Experiments:
        from .experiments import Experiments

        return Experiments(self)

    @cached_property
    def drift(self) -> Drift:
        from .drift import Drift

        return Drift(self)

    @cached_property
    def embeddings(self) -> Embeddings:
        from .embeddings import Embeddings

        return Embeddings(self)


def connect(dsn: str | None = None, read_dsn: str | None = None) -> Client:
    """Open a Client on ``dsn`` (or PGMLOPS_DSN / DATABASE_URL / the local cluster); read paths go to
    ``read_dsn`` (a hot standby) when given."""
    return Client(resolve_dsn(dsn), read_dsn)
