"""A pool of Clients for servers: ``pgmlops.connect_pool()`` wraps ``psycopg_pool.ConnectionPool``.

Many threads (a web server logging predictions, reading online features) share one ClientPool;
each request takes a Client for the length of a ``with pool.client() as client:`` block. The
pool's connections are configured by :func:`pgmlops.client.configure_connection`, as
``pgmlops.connect`` configures its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg

from .client import Client, Connection, configure_connection, reset_session_attributes, resolve_dsn

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from .feature_store import _OnlineCache

# ConnectionPool arguments the ClientPool sets itself
_OWN_ARGUMENTS = frozenset({"conninfo", "connection_class", "kwargs", "open", "configure", "reset",
                            "close_returns", "min_size", "max_size", "timeout"})

# run when a connection comes back, after psycopg_pool rolled back a transaction left open: session
# settings (SET, including mlops.tenant) and SET ROLE never outlive a checkout. Prepared statements,
# temp tables (the prediction staging table), LISTENs and session advisory locks do.
RESET_SQL = "reset all; reset role"


def _reset(conn: Connection) -> None:
    reset_session_attributes(conn)
    conn.execute(RESET_SQL)


class ClientPool:
    """Clients on pooled connections: ``with pool.client() as client: client.predictions.log(...)``.

    Up to ``max_size`` connections to ``dsn`` (and, with ``read_dsn``, as many again to the standby,
    taken only by Clients that read through ``client.read_conn``). When the block ends, the
    connections go back: psycopg_pool rolls back a transaction left open or failed and discards a
    connection that is broken or mid-query; then ``RESET_SQL`` and the connection attributes of a
    new connection (autocommit, dict rows, default isolation) are put back, and a connection that
    cannot be reset is discarded. ``Client.close()`` on a pooled Client returns its connections early;
    it never closes them. A Client must not be used after its block (PgmlopsError).

    Online feature lookups of every checkout share one plan cache and one LISTEN connection (to
    ``dsn``, outside ``max_size``, opened by the first lookup and closed by ``close()``)."""

    def __init__(self, dsn: str, *, read_dsn: str | None = None, min_size: int = 1, max_size: int = 10,
                 timeout: float = 30.0, **kwargs: Any) -> None:
        from psycopg_pool import ConnectionPool

        if min_size < 0:
            raise ValueError(f"connect_pool: min_size must be 0 or more, got {min_size}")
        if max_size < max(min_size, 1):
            raise ValueError(f"connect_pool: max_size ({max_size}) must be at least min_size ({min_size}) and 1")
        if timeout <= 0:
            raise ValueError(f"connect_pool: timeout must be positive, got {timeout}")
        own = sorted(_OWN_ARGUMENTS & kwargs.keys())
        if own:
            raise TypeError(f"connect_pool: {', '.join(own)} cannot be given: the ClientPool sets them")
        self.dsn = dsn
        self.read_dsn = read_dsn
        self.timeout = timeout
        self._lock = threading.Lock()
        self._cache: _OnlineCache | None = None
        self._closed = False
        base = kwargs.pop("name", None) or "pgmlops"

        def pool(conninfo: str, name: str) -> ConnectionPool[Connection]:
            return ConnectionPool(conninfo, connection_class=psycopg.Connection, open=False,
                                  configure=configure_connection, reset=_reset, min_size=min_size,
                                  max_size=max_size, timeout=timeout, name=name, **kwargs)

        self._pool = pool(dsn, base)
        self._read_pool = pool(read_dsn, f"{base}-read") if read_dsn else None
        try:
            for each in self._pools():
                each.open(wait=min_size > 0, timeout=timeout)  # a wrong DSN fails here, not at a checkout
        except BaseException:
            self.close()
            raise

    def _pools(self) -> list[ConnectionPool[Connection]]:
        return [self._pool] if self._read_pool is None else [self._pool, self._read_pool]

    @contextmanager
    def client(self, timeout: float | None = None) -> Iterator[Client]:
        """A Client on a pooled connection for the block; waits up to ``timeout`` seconds (the pool's
        by default) for a free one, then raises ``psycopg_pool.PoolTimeout``."""
        client = Client._pooled(self, self._pool.getconn(timeout))
        try:
            yield client
        finally:
            client.close()

    def _read_connection(self) -> Connection:
        """A connection of the read pool for ``Client.read_conn`` (given back by ``_release``)."""
        assert self._read_pool is not None
        return self._read_pool.getconn()

    def _release(self, client: Client) -> None:
        """Give a pooled Client's connections back, once, and detach them from it."""
        with client._lock:
            conn, read = client._conn, client._read_conn
            client._conn = client._read_conn = None
        try:
            if read is not None:
                assert self._read_pool is not None
                self._read_pool.putconn(read)
        finally:
            if conn is not None:
                self._pool.putconn(conn)

    def _online_cache(self) -> _OnlineCache:
        """The online lookup cache every checkout's ``client.features`` shares (made on first use)."""
        with self._lock:
            if self._cache is None:
                from .feature_store import _OnlineCache

                self._cache = _OnlineCache(self.dsn)
            return self._cache

    def stats(self) -> dict[str, int]:
        """psycopg_pool's counters of the primary pool (``pool_size``, ``pool_available``,
        ``requests_waiting``, ``requests_num``, ...), and of the read pool prefixed ``read_``."""
        stats = dict(self._pool.get_stats())
        if self._read_pool is not None:
            stats.update({f"read_{k}": v for k, v in self._read_pool.get_stats().items()})
        return stats

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout: float = 5.0) -> None:
        """Close the pools (waiting up to ``timeout`` seconds for their workers) and the LISTEN
        connection of online lookups. Connections still checked out are closed when they come back."""
        self._closed = True
        for each in self._pools():
            each.close(timeout)
        with self._lock:
            if self._cache is not None:
                self._cache.close()

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_pool(dsn: str | None = None, *, read_dsn: str | None = None, min_size: int = 1, max_size: int = 10,
                 timeout: float = 30.0, **kwargs: Any) -> ClientPool:
    """Open a :class:`ClientPool` on ``dsn`` (or PGMLOPS_DSN / DATABASE_URL / the local cluster, as
    ``pgmlops.connect``), keeping ``min_size`` to ``max_size`` connections; read paths of its Clients go
    to a second pool on ``read_dsn`` (a hot standby) when given. Returns once ``min_size`` connections
    are open (``psycopg_pool.PoolTimeout`` after ``timeout`` seconds otherwise). Other keyword
    arguments go to ``psycopg_pool.ConnectionPool`` (``name``, ``max_lifetime``, ``max_idle``,
    ``max_waiting``, ``check``, ...).

    Example::

        pool = pgmlops.connect_pool(max_size=20)
        with pool.client() as client:
            client.predictions.log("churn", request_id=rid, label="yes")
    """
    return ClientPool(resolve_dsn(dsn), read_dsn=read_dsn, min_size=min_size, max_size=max_size,
                      timeout=timeout, **kwargs)
