"""Feature store: entities, feature groups, online lookup, training sets (wraps mlops.* SQL).

The logic lives in SQL (``mlops.create_feature_group``, ``mlops.online_query``,
``mlops.create_training_set``, ...); this module moves data: DataFrames go in through COPY,
results come back as DataFrames. Online lookups run the SQL ``mlops.online_query`` builds as a
prepared statement, cached until NOTIFY mlops_feature_groups says a group changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import select
import threading
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import psycopg
from psycopg import RawCursor, generators, pq, sql
from psycopg.adapt import Transformer
from psycopg.rows import tuple_row
from rich.progress import Progress

from .errors import PgmlopsError

if TYPE_CHECKING:
    from .client import Client, Connection

FeatureSpec = Mapping[str, "str | Mapping[str, Any]"] | Sequence[Mapping[str, Any]]
Interval = timedelta | str | None
PROGRESS_ROWS = 100_000
GROUPS_CHANNEL = "mlops_feature_groups"  # create_feature_group notifies: new version or ttl change


_STATUS = ("MISSING", "PRESENT", "EXPIRED")  # status codes of the compact shapes of mlops.online_query


@dataclass
class _OnlinePlan:
    """Cached SQL of one online lookup (entity + features) in mlops.online_query's compact shapes:
    ``one`` takes $1 = a key, ``many`` $1 = keys (bytes: psycopg neither encodes nor re-hashes them
    per call). The result layout is read from the first execution. ``name`` is the server-side
    prepared statement of ``one``, run at the libpq level: named after its SQL's hash, so a plan
    rebuilt with the same SQL finds it prepared."""

    one: bytes
    many: bytes
    name: bytes
    layout: _Layout | None = None


class _Layout:
    """How a compact result row (entity_key, then ``#<alias>`` status codes each followed by the raw
    values they govern, then event_ts) expands to the columns shape: per feature its value, null when
    the code is 2 (EXPIRED: TTL enforced on read by the server's code), and ``<name>__status``."""

    def __init__(self, names: Sequence[str]) -> None:
        self.features: list[tuple[str, int, int]] = []  # (name, value index, status code index)
        status = -1
        for j, name in enumerate(names[1:-1], 1):
            if name.startswith("#"):  # feature names match ^[a-z][a-z0-9_]*$: never a value column
                status = j
            else:
                self.features.append((name, j, status))
        self.last = len(names) - 1
        self.columns = [names[0]]
        for name, _, _ in self.features:
            self.columns += [name, f"{name}__status"]
        self.columns.append(names[-1])
        self.spec = [(name, f"{name}__status", j, st) for name, j, st in self.features]

    def to_dict(self, r: tuple[Any, ...]) -> dict[str, Any]:
        """One row in the columns shape."""
        out: dict[str, Any] = {self.columns[0]: r[0]}
        for name, status_name, j, st in self.spec:
            code = r[st]
            out[name] = None if code == 2 else r[j]
            out[status_name] = _STATUS[code]
        out[self.columns[-1]] = r[self.last]
        return out

    def to_columns(self, rows: Sequence[tuple[Any, ...]]) -> dict[str, list[Any]]:
        """Rows as columns (name -> values), in the columns shape's order."""
        out: dict[str, list[Any]] = {self.columns[0]: [r[0] for r in rows]}
        for name, j, st in self.features:
            out[name] = [None if r[st] == 2 else r[j] for r in rows]
            out[f"{name}__status"] = [_STATUS[r[st]] for r in rows]
        out[self.columns[-1]] = [r[self.last] for r in rows]
        return out


class _GroupWatch:
    """Tells when cached online queries may be stale. LISTENs on mlops_feature_groups on a connection of
    its own to the primary (a standby cannot LISTEN; the client's connection stays free for the user's
    notifications) and polls its socket without blocking before each lookup: no round trip, no catalog
    query unless a feature group changed. Threads sharing a client share one watch: a lock makes each
    check whole (a poll object refuses concurrent polls)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: psycopg.Connection[Any] | None = None
        self.poller = select.poll()
        self.lock = threading.Lock()

    def changed(self) -> bool:
        """True on the first call and whenever a notification (or a broken connection) arrived since."""
        with self.lock:
            if self.conn is None:
                self.conn = psycopg.connect(self.dsn, autocommit=True)
                self.conn.execute(sql.SQL("listen {}").format(sql.Identifier(GROUPS_CHANNEL)))
                self.poller = select.poll()
                self.poller.register(self.conn.fileno(), select.POLLIN)
                return True
            if not self.poller.poll(0):
                return False
            try:
                for _ in self.conn.notifies(timeout=0):
                    pass
            except psycopg.Error:  # connection lost: listen again on the next call
                self._close()
            return True

    def close(self) -> None:
        with self.lock:
            self._close()

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class _Prepared:
    """One connection's statements prepared by ``_online_one`` and the transformer that loads their
    binary rows (the connection's adapters: pgvector's types), both used under the connection's lock."""

    def __init__(self, conn: Connection) -> None:
        self.names: set[bytes] = set()
        self.tx = Transformer(conn)


class _OnlineCache:
    """What makes online lookups cheap, kept across calls: the lookup plans, the watch that tells when
    they are stale, one reusable cursor per thread and the statements prepared on each connection.
    A Client owns one; the Clients of a ``ClientPool`` share the pool's, so a checkout neither rebuilds
    plans nor opens a LISTEN connection of its own."""

    def __init__(self, dsn: str) -> None:
        self.plans: dict[tuple[str, tuple[str, ...]], _OnlinePlan] = {}
        self.watch = _GroupWatch(dsn)
        self.local = threading.local()  # one reusable cursor per thread
        self.prepared: weakref.WeakKeyDictionary[Connection, _Prepared] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def prepared_on(self, conn: Connection) -> _Prepared:
        """The entry of ``conn``, made on its first lookup; entries of closed connections go then
        (a pool replaces connections, and an entry's transformer keeps its connection alive)."""
        with self._lock:
            entry = self.prepared.get(conn)
            if entry is None:
                for gone in [c for c in list(self.prepared) if c.closed]:
                    del self.prepared[gone]
                entry = self.prepared[conn] = _Prepared(conn)
            return entry

    def close(self) -> None:
        self.watch.close()


@dataclass(frozen=True)
class GroupTable:
    """Where a feature group version lives."""

    name: str
    version: int
    table_name: str
    key_column: str
    columns: dict[str, str]  # feature -> data_type


def _pg_type(series: pd.Series[Any]) -> str:
    """SQL type of a spine column from its pandas dtype."""
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "timestamptz"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "bigint"
    if pd.api.types.is_float_dtype(dtype):
        return "double precision"
    return "text"


def _cell(value: Any, data_type: str | None) -> Any:
    """A DataFrame cell as COPY wants it (vectors as '[..]' text, jsonb as JSON text, NA as NULL)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if data_type == "vector":
        return "[" + ",".join(repr(float(x)) for x in value) + "]"
    if data_type == "jsonb":
        return json.dumps(value)
    if isinstance(value, float) and math.isnan(value) and data_type not in ("float8", "float4"):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value


class FeatureStore:
    """``client.features``: entities, feature groups, writes, online lookup, training sets."""

    def __init__(self, client: Client, cache: _OnlineCache | None = None) -> None:
        self.client = client
        self._owns_cache = cache is None
        self._cache = cache = cache or _OnlineCache(client.dsn)
        self._plans = cache.plans
        self._watch = cache.watch
        self._local = cache.local
        self._prepared = cache.prepared

    @property
    def conn(self) -> Connection:
        return self.client.conn

    def _one(self, query: str, params: Sequence[Any] | Mapping[str, Any]) -> Any:
        row = self.conn.execute(query, params).fetchone()
        assert row is not None
        return next(iter(row.values()))

    def _frame(self, query: str, params: Sequence[Any] | Mapping[str, Any] = (),
               conn: Connection | None = None) -> pd.DataFrame:
        cur = (conn or self.conn).execute(query, params)
        cols = [d.name for d in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=cols)

    # --- definitions -------------------------------------------------------------------
    def create_entity(self, name: str, key_type: str = "int8", description: str = "",
                      key_column: str | None = None) -> str:
        """Register an entity; returns its key column name (default ``<name>_id``)."""
        return str(self._one("select mlops.create_entity(name => %s::text, key_type => %s::text, "
                             "description => %s::text, key_column => %s::text)",
                             (name, key_type, description, key_column)))

    def create_group(self, name: str, entity: str, features: FeatureSpec, ttl: Interval = None,
                     description: str = "", source: str | None = None, freshness_sla: Interval = None,
                     notify: bool = False) -> str:
        """Create (or version) a feature group; returns its table ``mlops_features.<name>__v<n>``.

        ``features``: ``{"amount": "float8", "segment": {"type": "text", "allowed": ["a", "b"]}}`` or a list
        of ``{"name": ..., "type": ..., rules}`` (a list keeps duplicates visible, so they are rejected).
        """
        if isinstance(features, Mapping):
            payload = json.dumps(dict(features))
        else:
            payload = json.dumps([dict(f) for f in features])
        table = str(self._one(
            "select mlops.create_feature_group(name => %s::text, entity => %s::text, features => %s::json, "
            "ttl => %s::interval, description => %s::text, source => %s::text, freshness_sla => %s::interval, "
            "notify => %s::boolean)",
            (name, entity, payload, ttl, description, source, freshness_sla, notify)))
        self._plans.clear()  # our own change counts at once; other clients hear of it through NOTIFY
        return table

    def create_aggregate(self, group: str, name: str, feature: str, agg: str, window: Interval) -> str:
        """Window aggregate (count/sum/avg/min/max over ``window``); returns its reference ``group:name``."""
        return str(self._one("select mlops.create_aggregate_feature(%s::text, %s::text, %s::text, %s::text, "
                             "%s::interval)", (group, name, feature, agg, window)))

    def group_table(self, group: str) -> GroupTable:
        """Table, key column and feature types of a group (``name`` or ``name@version``)."""
        row = self.conn.execute(
            "select g.name, g.version, g.table_name, e.key_column, "
            "       (select pg_catalog.jsonb_object_agg(d.name, d.data_type) from mlops.feature_defs d "
            "         where d.group_id = g.id) as columns "
            "  from mlops._feature_group(%s::text) g join mlops.entities e on e.name = g.entity",
            (group,)).fetchone()
        assert row is not None
        return GroupTable(row["name"], row["version"], row["table_name"], row["key_column"], dict(row["columns"]))

    # --- writes --------------------------------------------------------------------------
    def write(self, group: str, df: pd.DataFrame, progress: bool | None = None) -> int:
        """Append a DataFrame (key column, ``event_ts``, feature columns) to a group with COPY, in one
        transaction: a bad row (type, rule, vector dimension) writes nothing. Returns rows written."""
        table = self.group_table(group)
        allowed = {table.key_column, "event_ts", "created_at", *table.columns}
        unknown = [str(c) for c in df.columns if c not in allowed]
        if unknown:
            raise PgmlopsError(f"unknown feature(s) {unknown} for feature group {table.name} "
                               f"(version {table.version}); known: {sorted(table.columns)}")
        for required in (table.key_column, "event_ts"):
            if required not in df.columns:
                raise PgmlopsError(f"DataFrame for feature group {table.name} lacks column {required!r}")
        cols = [str(c) for c in df.columns]
        types = [table.columns.get(c) for c in cols]
        show = len(df) >= PROGRESS_ROWS if progress is None else progress
        copy_sql = sql.SQL("copy mlops_features.{} ({}) from stdin").format(
            sql.Identifier(table.table_name), sql.SQL(", ").join(sql.Identifier(c) for c in cols))
        with self.conn.transaction(), self.conn.cursor() as cur, cur.copy(copy_sql) as copy, \
                Progress(disable=not show, transient=True) as bar:
            task = bar.add_task(f"writing {table.name}", total=len(df))
            for n, row in enumerate(df.itertuples(index=False, name=None), 1):
                copy.write_row([_cell(v, t) for v, t in zip(row, types, strict=True)])
                if n % 10_000 == 0:
                    bar.update(task, completed=n)
            bar.update(task, completed=len(df))
        return len(df)

    def write_rows(self, group: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert rows (dicts) through ``mlops.write_features``; returns rows written."""
        return int(self._one("select mlops.write_features(%s::text, %s::jsonb)",
                             (group, json.dumps(list(map(dict, rows)), default=str))))

    # --- online --------------------------------------------------------------------------
    def _online_plan(self, entity: str, features: tuple[str, ...]) -> _OnlinePlan:
        """The prepared SQL of a lookup, built by ``mlops.online_query`` once and cached until a
        feature group changes (NOTIFY mlops_feature_groups), so a lookup does no catalog query."""
        if self._watch.changed():
            self._plans.clear()
        key = (entity, features)
        plan = self._plans.get(key)
        if plan is None:
            row = self.conn.execute("select mlops.online_query(%s::text, %s::text[], 'compact_row') as one, "
                                    "mlops.online_query(%s::text, %s::text[], 'compact') as many",
                                    (entity, list(features), entity, list(features))).fetchone()
            assert row is not None
            one = row["one"].encode()
            name = b"pgmlops_online_" + hashlib.sha1(one).hexdigest()[:24].encode()
            plan = self._plans[key] = _OnlinePlan(one, row["many"].encode(), name)
        return plan

    def _online_rows(self, entity: str, keys: Sequence[Any], features: Sequence[str]) \
            -> tuple[_Layout, list[tuple[Any, ...]]]:
        """Layout and rows (tuples, compact shape) of an online lookup: one prepared statement, binary
        results."""
        plan = self._online_plan(entity, tuple(features))
        conn = self.client.read_conn
        if len(keys) == 1:
            key = str(keys[0])
            # libpq reads a text parameter up to its first NUL, and the connection's encoding may not
            # be ASCII's superset: other keys take the cursor path (psycopg encodes them, or refuses)
            rows = self._online_one(conn, plan, key.encode()) if key.isascii() and "\0" not in key else None
            if rows is not None:
                assert plan.layout is not None
                return plan.layout, rows
        local = self._local
        cur: RawCursor[tuple[Any, ...]] | None = getattr(local, "cursor", None)
        if cur is None or cur.connection is not conn or cur.closed:
            cur = local.cursor = RawCursor(conn, row_factory=tuple_row)  # $1 placeholders: PostgreSQL's own
        if len(keys) == 1:
            cur.execute(plan.one, (str(keys[0]),), prepare=True, binary=True)
        else:
            cur.execute(plan.many, ([str(k) for k in keys],), prepare=True, binary=True)
        rows = cur.fetchall()
        layout = plan.layout
        if layout is None:
            layout = plan.layout = _Layout([d.name for d in cur.description or ()])
        return layout, rows

    def _online_one(self, conn: Connection, plan: _OnlinePlan, key: bytes) -> list[tuple[Any, ...]] | None:
        """One-key lookup straight through libpq (Bind/Execute of the named statement, binary rows
        loaded by psycopg's own loaders) under the connection's lock, as psycopg does: its cursor
        machinery is most of a one-row lookup's client time. None when psycopg's cursor would do more
        than that (closed connection, pipeline mode, a transaction to open first): the caller then
        takes the cursor path."""
        pgconn = conn.pgconn
        if conn.closed or pgconn.pipeline_status != pq.PipelineStatus.OFF or (
                not conn.autocommit and pgconn.transaction_status == pq.TransactionStatus.IDLE):
            return None
        state = self._prepared.get(conn) or self._cache.prepared_on(conn)
        prepared = state.names
        for attempt in range(2):
            with conn.lock:
                if plan.name not in prepared:
                    pgconn.send_prepare(plan.name, plan.one)
                    res = conn.wait(generators.execute(pgconn))[-1]
                    if res.status != pq.ExecStatus.COMMAND_OK \
                            and res.error_field(pq.DiagnosticField.SQLSTATE) != b"42P05":  # 42P05: exists
                        raise psycopg.errors.error_from_result(res, encoding=conn.info.encoding)
                    prepared.add(plan.name)
                pgconn.send_query_prepared(plan.name, (key,), None, pq.Format.BINARY)
                res = conn.wait(generators.execute(pgconn))[-1]
                if res.status == pq.ExecStatus.TUPLES_OK:  # loaded under the lock: tx is the connection's
                    tx = state.tx
                    if plan.layout is None:
                        encoding = conn.info.encoding
                        plan.layout = _Layout([(res.fname(i) or b"").decode(encoding) for i in range(res.nfields)])
                    tx.set_pgresult(res)
                    return tx.load_rows(0, res.ntuples, tuple)
            if res.error_field(pq.DiagnosticField.SQLSTATE) != b"26000":
                break
            prepared.discard(plan.name)  # gone (DISCARD ALL, DEALLOCATE ALL): prepare again, outside a
            if attempt or pgconn.transaction_status != pq.TransactionStatus.IDLE:  # transaction only
                break
        raise psycopg.errors.error_from_result(res, encoding=conn.info.encoding)

    def online_raw(self, entity: str, keys: Sequence[Any], features: Sequence[str]) -> list[dict[str, Any]]:
        """Online lookup rows as dicts (entity_key, one value and one ``<name>__status`` per feature,
        event_ts), one per key in the given order, through a prepared statement."""
        layout, rows = self._online_rows(entity, keys, features)
        to_dict = layout.to_dict
        return [to_dict(row) for row in rows]

    def online(self, entity: str, keys: Sequence[Any], features: Sequence[str]) -> pd.DataFrame:
        """Online features: one row per key (given order) with a column per feature, ``<feature>__status``
        (PRESENT / EXPIRED / MISSING; TTL enforced on read) and ``event_ts``."""
        layout, rows = self._online_rows(entity, keys, features)
        if not rows:
            return pd.DataFrame(columns=layout.columns)
        columns = layout.to_columns(rows)
        for name, values in columns.items():
            if any(hasattr(v, "to_numpy") for v in values):  # pgvector values -> numpy arrays
                columns[name] = [v.to_numpy() if hasattr(v, "to_numpy") else v for v in values]
        return pd.DataFrame(columns)

    def close(self) -> None:
        """Close the connection listening for feature group changes (``Client.close`` calls it); a
        pooled Client's store leaves it to the pool, which shares it between checkouts."""
        if self._owns_cache:
            self._cache.close()

    def purge_expired(self) -> int:
        """Delete online rows past their group's ttl; returns how many."""
        return int(self._one("select mlops.purge_expired()", ()))

    # --- training sets ---------------------------------------------------------------------
    def _upload_spine(self, spine: pd.DataFrame) -> str:
        name = "_pgmlops_spine"
        cols = [str(c) for c in spine.columns]
        self.conn.execute(sql.SQL("drop table if exists pg_temp.{}").format(sql.Identifier(name)))
        self.conn.execute(sql.SQL("create temp table {} ({})").format(
            sql.Identifier(name),
            sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_pg_type(spine[c])))
                               for c in cols)))
        with self.conn.cursor() as cur, cur.copy(sql.SQL("copy pg_temp.{} from stdin").format(sql.Identifier(name))) \
                as copy:
            for row in spine.itertuples(index=False, name=None):
                copy.write_row([_cell(v, None) for v in row])
        return f"pg_temp.{name}"

    def create_training_set(self, name: str, spine: pd.DataFrame | str, features: Sequence[str],
                            timestamp_column: str | None = None) -> str:
        """Materialize a point-in-time training set in mlops_features; returns its table name."""
        if isinstance(spine, pd.DataFrame):
            spine_ref = self._upload_spine(spine)
        elif re.match(r"^\s*\(?\s*(select|with|values|table)\b", spine, re.IGNORECASE):
            spine_ref = spine
        else:  # resolve a table name with the caller's search_path (SQL functions pin theirs)
            spine_ref = str(self._one("select pg_catalog.format('%%I.%%I', n.nspname, c.relname) as t "
                                      "from pg_catalog.pg_class c "
                                      "join pg_catalog.pg_namespace n on n.oid = c.relnamespace "
                                      "where c.oid = %s::text::regclass", (spine,)))
        return str(self._one(
            "select mlops.create_training_set(name => %s::text, spine => %s::text, features => %s::text[], "
            "timestamp_column => %s::text)", (name, spine_ref, list(features), timestamp_column)))

    def training_set(self, spine: pd.DataFrame | str, features: Sequence[str], name: str | None = None,
                     timestamp_column: str | None = None) -> pd.DataFrame:
        """Point-in-time training set as a DataFrame: ``spine`` is a DataFrame, a table name or a query with
        the entity key column(s) and a timestamp; each row gets, per group, the newest feature values with
        event_ts <= its timestamp within the group's ttl. Materialized (with lineage) as ``name``."""
        name = name or f"ts_{uuid.uuid4().hex[:16]}"
        table = self.create_training_set(name, spine, features, timestamp_column)
        return self._frame(f"select * from {table}")

    # --- monitoring ------------------------------------------------------------------------
    def freshness(self) -> pd.DataFrame:
        """``mlops.feature_freshness``: newest event, lag, SLA, stale flag per current group."""
        return self._frame("select * from mlops.feature_freshness order by group_name")

    def check_freshness(self) -> pd.DataFrame:
        """Raise/resolve feature_freshness alerts; one row per group."""
        return self._frame("select * from mlops.check_freshness()")

    def validate(self, group: str) -> pd.DataFrame:
        """Rule report over a group's existing rows (null rate, min/max/allowed/NaN violations)."""
        return self._frame("select * from mlops.validate_features(%s::text)", (group,))

    def groups(self) -> pd.DataFrame:
        """``mlops.feature_groups``."""
        return self._frame("select * from mlops.feature_groups order by group_name, version")
