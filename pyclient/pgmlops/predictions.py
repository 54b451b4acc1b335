"""Prediction logging, feedback and monitoring (wraps mlops.* SQL).

Single predictions go through ``mlops.log_prediction`` (one round trip). DataFrames and record
lists go chunk by chunk in one transaction (a background thread encodes the next chunk
meanwhile, :class:`CopyChunks`: binary COPY data, or CSV for values binary cannot carry
exactly): COPYed straight into mlops.predictions and its request-key table when every row
passes log_prediction's rules, otherwise, and when any request_id repeats, all of them through
the session's staging table and ``mlops.log_staged_predictions`` (the SQL API's checks and
request_id idempotency, set-based).
"""

from __future__ import annotations

import codecs
import functools
import json
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd
from psycopg import errors
from psycopg.types.json import Jsonb
from rich.progress import Progress

from .copy_binary import binary_copy

if TYPE_CHECKING:
    from .client import Client

P = ParamSpec("P")
R = TypeVar("R")

#: Columns accepted by :meth:`Predictions.log_many` (the staging table's columns).
COLUMNS = ("request_id", "model", "version", "alias", "experiment", "variant", "unit_id", "features",
           "feature_vector", "output", "score", "label", "confidence", "latency_ms", "error", "created_at")
JSON_COLUMNS = ("features", "output")
#: Largest features / actual JSON accepted (bytes as stored), enforced in SQL.
MAX_JSON_BYTES = 65536


@dataclass
class PredictionRecord:
    """What a :meth:`Predictions.timed` block fills in; logged when the block exits."""

    output: Any = None
    score: float | None = None
    label: str | None = None
    confidence: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    prediction_id: int | None = None
    latency_ms: float | None = None


def _dumps_records(obj: Any) -> str:
    """JSON of prediction records: datetimes as ISO 8601 (created_at), numpy arrays and scalars as numbers."""
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    return json.dumps(obj, default=default)


def _json_cell(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _vector_cell(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    return "[" + ",".join(repr(float(x)) for x in value) + "]"


def _vector_dims(value: Any) -> int | None:
    """Dimensions of a feature_vector cell (a sequence, or pgvector text); None for NULL."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.count(",") + 1 if isinstance(value, str) else len(value)


def _utc_text(chunk: pd.DataFrame) -> pd.DataFrame:
    """Time zone aware datetime columns as ISO text in UTC (``...T13:09:12.874120+00``, NULL for
    NaT): vectorized, several times faster than letting to_csv format each Timestamp."""
    tz_cols = [c for c in chunk.columns if isinstance(chunk[c].dtype, pd.DatetimeTZDtype)]
    if not tz_cols:
        return chunk
    chunk = chunk.copy()
    for c in tz_cols:
        utc = chunk[c].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        text = pd.Series(np.datetime_as_string(utc, unit="us"), index=chunk.index).astype(object) + "+00"
        chunk[c] = text.where(chunk[c].notna(), None)
    return chunk


#: Columns of the request keys in the batch (COPYed in key order: the index is filled as one
#: ascending run), and their types for a binary COPY.
KEY_COLUMNS = ("request_id", "id")
KEY_TYPES = ("text", "int8")
#: Types of the batch columns for a binary COPY, the same in mlops.predictions and the staging
#: table (feature_vector: pgvector's binary form, from sequences; vectors given as text go as CSV).
COPY_TYPES = {"request_id": "text", "model": "text", "version": "int4", "alias": "text", "experiment": "text",
              "variant": "text", "unit_id": "text", "features": "jsonb", "output": "jsonb", "score": "float8",
              "label": "text", "confidence": "float8", "latency_ms": "float8", "error": "text",
              "created_at": "timestamptz", "id": "int8", "model_version_id": "int8", "feature_vector": "vector"}
#: Batch columns of one width in every row, placed first so a binary row starts with one block.
_FIXED_FIRST = ("id", "model_version_id", "version", "created_at")


def copy_format(data: str | bytes) -> str:
    """COPY format of a chunk made by :class:`CopyChunks`: bytes are binary, text is CSV."""
    return "binary" if isinstance(data, bytes) else "csv"


def keys_copy(keys: str | bytes) -> str:
    """COPY statement of a chunk's request keys."""
    return f"copy mlops.prediction_requests (request_id, prediction_id) from stdin (format {copy_format(keys)})"


def copy_statements(columns: Sequence[str], data: str | bytes) -> tuple[str, str]:
    """(direct, staging) COPY statements for one chunk (CSV text or binary) of a resolved batch's
    columns: straight into mlops.predictions (where the resolved version number is model_version),
    or into the staging table."""
    fmt = copy_format(data)
    direct = ", ".join("model_version" if c == "version" else c for c in columns)
    return (f"copy mlops.predictions ({direct}) from stdin (format {fmt})",
            f"copy pg_temp.mlops_prediction_staging ({', '.join(columns)}) from stdin (format {fmt})")


def _uuid_texts(n: int) -> list[str]:
    """n random version-4 UUIDs as text, like the server's gen_random_uuid()::text."""
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    h = raw.tobytes().hex()
    return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-{h[i + 20:i + 32]}"
            for i in range(0, 32 * n, 32)]


def _constant(column: pd.Series) -> bool:
    """Whether every value of column equals the first, or every value is missing."""
    missing = column.isna()
    if missing.all():
        return True
    return not missing.any() and bool((column == column.iloc[0]).all())


def _with_ids(conn: Any, batch: pd.DataFrame, version_id: pd.Series | None) -> pd.DataFrame:
    """batch with request_id and created_at filled as the server would fill them, ids taken from
    mlops.predictions_id_seq and the resolved model_version_id (null when unresolved)."""
    row = conn.execute("select pg_catalog.now() as now, (select pg_catalog.array_agg("
                       "pg_catalog.nextval('mlops.predictions_id_seq'))"
                       " from pg_catalog.generate_series(1, %s::integer)) as ids",
                       (len(batch),), binary=True).fetchone()
    assert row is not None
    if "request_id" not in batch.columns:
        batch.insert(0, "request_id", _uuid_texts(len(batch)))
    elif (missing := batch["request_id"].isna()).any():
        batch.loc[missing, "request_id"] = _uuid_texts(int(missing.sum()))
    if "created_at" not in batch.columns:
        batch["created_at"] = pd.Series(pd.Timestamp(row["now"]), index=batch.index)
    elif (missing := batch["created_at"].isna()).any():  # rare: as objects, each printed with its own zone
        batch["created_at"] = batch["created_at"].astype(object).where(~missing, pd.Timestamp(row["now"]))
    batch["id"] = np.asarray(row["ids"], dtype=np.int64)
    batch["model_version_id"] = (pd.Series(pd.NA, index=batch.index, dtype="Int64") if version_id is None
                                 else version_id.astype("Int64"))
    return batch


#: Features JSON text up to this length is at most 64 KiB as stored jsonb (a jsonb value takes
#: at most about 6 bytes per byte of its text); longer rows go through the staging path, whose
#: check of the stored size decides.
_DIRECT_FEATURES_TEXT = 8192


def _passes_rules(batch: pd.DataFrame) -> bool:
    """Whether every row surely passes the rules log_prediction checks in SQL (latency_ms finite
    and >= 0, confidence in [0, 1], score finite, request_id 1 to 200 characters, features at most
    64 KiB). A row in doubt sends the batch to the staging path, where SQL checks and names it."""
    def numbers(column: str) -> pd.Series:
        return pd.to_numeric(batch[column], errors="coerce") if column in batch.columns else pd.Series(dtype=float)

    def bad_text(column: str) -> bool:  # not a number, where one is given
        return column in batch.columns and bool((batch[column].notna() & numbers(column).isna()).any())

    latency, confidence, score = numbers("latency_ms"), numbers("confidence"), numbers("score")
    ids = batch["request_id"].astype(str).str.len()
    features = batch["features"].str.len() if "features" in batch.columns else pd.Series(dtype=float)
    return not (bad_text("latency_ms") or bad_text("confidence") or bad_text("score")
                or bool(((latency < 0) | np.isinf(latency)).any())
                or bool(((confidence < 0) | (confidence > 1)).any())
                or bool(np.isinf(score).any())
                or bool(((ids < 1) | (ids > 200)).any())
                or bool((features > _DIRECT_FEATURES_TEXT).any()))


#: Rows pandas formats per call of its C writer, which holds the GIL: in short calls the thread
#: that sends the previous chunk gets the GIL back soon (measured on 1M rows: log_many 14.4 s
#: instead of 16-17 s; pandas' default is about 9,000 rows for 11 columns).
_CSV_ROWS_PER_CALL = 2000


#: Largest fixed-width copy of the request ids that :func:`key_order` makes to sort them as bytes.
_KEY_SORT_BYTES = 256 * 1024 * 1024


def key_order(request_ids: pd.Series) -> np.ndarray:
    """Row positions in the order of the request ids' UTF-8 bytes: the order of the key index
    (collation "C"), so that all chunks' keys enter it as one ascending run. Measured on 1M keys:
    1.45 s instead of 2.0 s when each 100k chunk is sorted on its own (the bench's ids), 1.6 s
    instead of 2.55 s for UUIDs, and an index 25-40 % smaller. As fixed-width bytes numpy sorts
    1M UUIDs in 0.6 s, against 2.5 s as str objects. The order only speeds the COPY up: the
    unique index checks every key whatever the order."""
    encoded = [str(x).encode("utf-8", "surrogatepass") for x in request_ids]
    width = max(map(len, encoded), default=1)
    keys = np.array(encoded) if width * len(encoded) <= _KEY_SORT_BYTES else np.array(encoded, dtype=object)
    return np.argsort(keys, kind="stable")


def ordered_keys(batch: pd.DataFrame) -> pd.DataFrame:
    """The request keys (:data:`KEY_COLUMNS`) of all rows of batch, in the key index's order."""
    return batch[list(KEY_COLUMNS)].iloc[key_order(batch["request_id"])]


def _copy_data(chunk: pd.DataFrame, types: Sequence[str] | None) -> str | bytes:
    """Binary COPY data of chunk when types are given and every column encodes exactly, else CSV."""
    data = binary_copy(chunk, types) if types is not None else None
    if data is not None:
        return data
    if "feature_vector" in chunk.columns:  # sequences as pgvector text
        chunk = chunk.assign(feature_vector=chunk["feature_vector"].map(_vector_cell))
    return _utc_text(chunk).to_csv(header=False, index=False, chunksize=_CSV_ROWS_PER_CALL)


class CopyChunks:
    """(rows, data) of consecutive chunks of df, made by a background thread while the caller's
    server works on the previous chunk. data is binary COPY data (bytes) when types are given
    and every column of the chunk encodes exactly (:mod:`.copy_binary`), else CSV text. Use as
    a context manager so the thread stops when the caller fails.
    (Pausing the writer while the caller sends, so that socket writes need not wait for the
    GIL, was measured slower: it also stops the overlap.)"""

    def __init__(self, df: pd.DataFrame, chunk_size: int, types: Sequence[str] | None = None) -> None:
        self.df, self.chunk_size, self.types = df, chunk_size, types
        self._chunks: queue.Queue[tuple[int, str | bytes] | BaseException | None] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._produce, name="pgmlops-copy", daemon=True)

    def __enter__(self) -> CopyChunks:
        self._worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._worker.join()

    def __iter__(self) -> Iterator[tuple[int, str | bytes]]:
        while (item := self._chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def _put(self, item: tuple[int, str | bytes] | BaseException | None) -> None:
        while not self._stop.is_set():
            try:
                self._chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _produce(self) -> None:
        try:
            for start in range(0, len(self.df), self.chunk_size):
                chunk = self.df.iloc[start:start + self.chunk_size]
                self._put((len(chunk), _copy_data(chunk, self.types)))
            self._put(None)
        except BaseException as exc:  # handed to the consumer
            self._put(exc)


class Predictions:
    """``client.predictions``: log, log_many, feedback, performance, timed / track."""

    def __init__(self, client: Client) -> None:
        self.client = client

    # -- logging ---------------------------------------------------------------------------
    def log(self, model: str, *, request_id: str | None = None, version: int | None = None,
            alias: str | None = None, features: Mapping[str, Any] | None = None, output: Any = None,
            score: float | None = None, label: str | None = None, confidence: float | None = None,
            latency_ms: float | None = None, error: str | None = None, unit_id: str | None = None,
            experiment: str | None = None, variant: str | None = None,
            feature_vector: Sequence[float] | None = None, created_at: datetime | None = None) -> int:
        """Log one prediction; returns its id (the first row's id when request_id was logged before)."""
        row = self.client.conn.execute(
            "select mlops.log_prediction(model => %s::text, request_id => %s::text, version => %s::integer,"
            " alias => %s::text, features => %s::jsonb, output => %s::jsonb, score => %s::float8,"
            " label => %s::text, confidence => %s::float8, latency_ms => %s::float8, error => %s::text,"
            " unit_id => %s::text, experiment => %s::text, variant => %s::text,"
            " feature_vector => %s::text::vector, created_at => %s::timestamptz) as id",
            (model, request_id, version, alias, None if features is None else Jsonb(dict(features)),
             None if output is None else Jsonb(output), score, label, confidence, latency_ms, error, unit_id,
             experiment, variant, _vector_cell(feature_vector), created_at)).fetchone()
        assert row is not None
        return int(row["id"])

    def log_many(self, rows: pd.DataFrame | Iterable[Mapping[str, Any]], *, chunk_size: int = 100_000,
                 progress: bool = True) -> int:
        """COPY predictions (DataFrame or records, columns from :data:`COLUMNS`), chunk_size rows at
        a time in one transaction; returns how many were new. All or nothing: one bad row rejects
        the whole call.

        When every row passes log_prediction's rules (checked here, vectorized), the request keys
        are COPYed into mlops.prediction_requests, all in the index's order, then the chunks
        straight into mlops.predictions (versions resolved once per call, ids taken from the
        sequence), inside one savepoint. Otherwise, or when that fails (a request_id logged before or
        repeated, a partition missing, row-level security, which refuses COPY), every chunk goes
        through the staging table and ``mlops.log_staged_predictions``, which skips repeats,
        creates partitions and names any bad value."""
        df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        unknown = sorted(set(map(str, df.columns)) - set(COLUMNS))
        if unknown:
            raise ValueError(f"log_many: unknown column(s) {unknown}; allowed: {list(COLUMNS)}")
        if "model" not in df.columns:
            raise ValueError("log_many: column 'model' is required")
        if df.empty:
            return 0
        conn = self.client.conn
        with conn.transaction(), Progress(disable=not progress, transient=True) as bar:
            batch, direct = self._resolved_batch(df)
            columns = list(batch.columns)
            # binary text is UTF-8 bytes: only where the server reads the client's text as UTF-8
            binary = all(c in COPY_TYPES for c in columns) and codecs.lookup(conn.info.encoding).name == "utf-8"
            types = [COPY_TYPES[c] for c in columns] if binary else None
            task = bar.add_task("COPY predictions", total=len(batch))
            if direct:
                try:
                    # one savepoint: all keys first, in the index's order (a repeat fails before any
                    # row is written), then the rows; the rows' first chunk is encoded meanwhile
                    with (conn.transaction(), CopyChunks(batch, chunk_size, types) as chunks,
                          CopyChunks(ordered_keys(batch), chunk_size, None if types is None else KEY_TYPES) as keys):
                        for _, data in keys:
                            with conn.cursor().copy(keys_copy(data)) as copy:
                                copy.write(data)
                        for rows_in_chunk, data in chunks:
                            with conn.cursor().copy(copy_statements(columns, data)[0]) as copy:
                                copy.write(data)
                            bar.advance(task, rows_in_chunk)
                    return len(batch)
                # repeats, a broken rule or no partition yet; row-level security (tenancy) or no INSERT
                # grant: the staging path sorts it out
                except (errors.UniqueViolation, errors.CheckViolation, errors.NotNullViolation,
                        errors.FeatureNotSupported, errors.InsufficientPrivilege):
                    bar.reset(task)
            conn.execute("select mlops.create_prediction_staging()")
            new = 0
            with CopyChunks(batch, chunk_size, types) as chunks:
                for rows_in_chunk, data in chunks:
                    with conn.cursor().copy(copy_statements(columns, data)[1]) as copy:
                        copy.write(data)
                    row = conn.execute("select mlops.log_staged_predictions() as n").fetchone()  # empties staging
                    assert row is not None
                    new += int(row["n"])
                    bar.advance(task, rows_in_chunk)
            return new

    def _resolved_batch(self, df: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
        """df as the rows to COPY (columns of :data:`COLUMNS` present, then id and model_version_id):
        versions resolved (``version`` holds the number served), missing request_ids and
        created_at filled as the server would (the transaction's now()), ids from the sequence.
        Also whether the direct path may be taken: not when a row may break a rule of
        log_prediction (the table has no CHECK constraints), so that the staging path, which
        checks every row in SQL, accepts or names them."""
        conn = self.client.conn
        batch = df[[c for c in COLUMNS if c in df.columns]].copy()
        for c in JSON_COLUMNS:  # JSON text already (or all null) goes as it is: mapping 1M cells took 1 s
            if c in batch.columns and pd.api.types.infer_dtype(batch[c], skipna=True) not in ("string", "empty"):
                batch[c] = batch[c].map(_json_cell)
        batch["version"] = (batch["version"] if "version" in batch.columns else pd.Series(pd.NA, index=batch.index)
                            ).astype("Int64")
        if batch["model"].isna().any():
            return _with_ids(conn, batch, None), False
        alias = batch["alias"] if "alias" in batch.columns else pd.Series(None, index=batch.index, dtype=object)
        keys = pd.DataFrame({"model": batch["model"], "version": batch["version"], "alias": alias})
        # the usual batch names one model, version and alias: checked per column in a fraction of
        # the time drop_duplicates takes over the rows (0.2 s per 1M)
        combos = keys.iloc[:1] if all(_constant(keys[c]) for c in keys.columns) else keys.drop_duplicates()
        resolved = conn.execute(
            "select version_id, version_number, vector_dim"
            " from mlops._resolve_prediction_versions(%s::text[], %s::integer[], %s::text[])",
            ([str(m) for m in combos["model"]], [None if pd.isna(v) else int(v) for v in combos["version"]],
             [None if a is None or (isinstance(a, float) and math.isnan(a)) else str(a) for a in combos["alias"]]),
        ).fetchall()
        combos = combos.assign(version_id=[r["version_id"] for r in resolved],
                               version_number=[r["version_number"] for r in resolved],
                               vector_dim=[r["vector_dim"] for r in resolved])
        if len(combos) == 1:  # the usual batch: constants
            first = combos.iloc[0]
            version_id = pd.Series(int(first["version_id"]), index=batch.index)
            version_number = pd.Series(int(first["version_number"]), index=batch.index)
            vector_dim = pd.Series(first["vector_dim"], index=batch.index, dtype="Int64")
        else:  # join on the triple; None/NA keys match each other
            on = ["model", "version", "alias"]
            mapped = keys.reset_index(drop=True).merge(combos, on=on, how="left")
            version_id = pd.Series(mapped["version_id"].to_numpy(), index=batch.index)
            version_number = pd.Series(mapped["version_number"].to_numpy(), index=batch.index)
            vector_dim = pd.Series(mapped["vector_dim"].to_numpy(), index=batch.index).astype("Int64")
        batch["version"] = version_number
        batch = _with_ids(conn, batch, version_id)
        batch = batch[[*_FIXED_FIRST, *(c for c in batch.columns if c not in _FIXED_FIRST)]]
        direct = _passes_rules(batch)
        if direct and "feature_vector" in batch.columns and vector_dim.notna().any():
            given = batch["feature_vector"].map(_vector_dims).astype("Int64")
            direct = not bool((given.notna() & vector_dim.notna() & (given != vector_dim)).any())
        return batch, direct

    def log_batch(self, predictions: Sequence[Mapping[str, Any]]) -> int:
        """Log a list of prediction records (keys from :data:`COLUMNS`) as one JSON array in one statement
        (``mlops.log_predictions``); returns how many were new (repeated request_ids are skipped)."""
        row = self.client.conn.execute(
            "select mlops.log_predictions(predictions => %s::jsonb) as n",
            (Jsonb([dict(p) for p in predictions], dumps=_dumps_records),)).fetchone()
        assert row is not None
        return int(row["n"])

    def feedback(self, request_id: str, *, actual: Any = None, label: str | None = None,
                 value: float | None = None, correct: bool | None = None, reward: float | None = None) -> bool:
        """Record ground truth for a request (kept even before the prediction is logged).
        Returns whether the prediction is already logged."""
        row = self.client.conn.execute(
            "select mlops.log_feedback(request_id => %s::text, actual => %s::jsonb, label => %s::text,"
            " value => %s::float8, correct => %s::boolean, reward => %s::float8) as logged",
            (request_id, None if actual is None else Jsonb(actual), label, value, correct, reward)).fetchone()
        assert row is not None
        return bool(row["logged"])

    # -- timing a user's predict call -----------------------------------------------------------
    @contextmanager
    def timed(self, model: str, **log_args: Any) -> Iterator[PredictionRecord]:
        """``with client.predictions.timed("churn", features=x) as rec: rec.score = m.predict(x)``
        logs the prediction with the block's wall time as latency_ms; an exception is logged as
        error and re-raised."""
        rec = PredictionRecord()
        start = time.perf_counter()
        error: str | None = None
        try:
            yield rec
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
            raise
        finally:
            rec.latency_ms = (time.perf_counter() - start) * 1000.0
            args = {**log_args, **rec.extra}
            rec.prediction_id = self.log(model, output=rec.output, score=rec.score, label=rec.label,
                                         confidence=rec.confidence, latency_ms=rec.latency_ms, error=error,
                                         **args)

    def track(self, model: str, **log_args: Any) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorator: times each call of a predict function and logs it. A float result is logged
        as score, a str as label, anything else as output; a dict first argument as features."""

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            @functools.wraps(fn)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                extra = dict(log_args)
                if args and isinstance(args[0], Mapping) and "features" not in extra:
                    extra["features"] = dict(args[0])
                with self.timed(model, **extra) as rec:
                    result = fn(*args, **kwargs)
                    if isinstance(result, bool) or not isinstance(result, (int, float, str)):
                        rec.output = result
                    elif isinstance(result, str):
                        rec.label = result
                    else:
                        rec.score = float(result)
                return result

            return wrapper

        return decorate

    # -- monitoring ------------------------------------------------------------------------
    def performance(self, model: str, since: datetime | None = None, bucket: str = "1 hour") -> pd.DataFrame:
        """Per version and time bucket: predictions, errors, error_rate, latency p50/p95/p99,
        mean_confidence, feedback_count, accuracy, mae (``mlops.model_performance``)."""
        rows = self.client.read_conn.execute(
            "select * from mlops.model_performance(model => %s::text,"
            " since => coalesce(%s::timestamptz, pg_catalog.now() - interval '1 day'), bucket => %s::interval)",
            (model, since, bucket)).fetchall()
        columns = ["time", "model_version", "predictions", "errors", "error_rate", "latency_p50", "latency_p95",
                   "latency_p99", "mean_confidence", "feedback_count", "accuracy", "mae"]
        return pd.DataFrame(rows, columns=columns)

    def latency_p95(self, model: str, version: int, since: datetime) -> float | None:
        row = self.client.read_conn.execute(
            "select mlops.model_version_latency_p95(%s::text, %s::integer, %s::timestamptz) as v",
            (model, version, since)).fetchone()
        assert row is not None
        return None if row["v"] is None else float(row["v"])

    def accuracy(self, model: str, version: int, since: datetime) -> float | None:
        row = self.client.read_conn.execute(
            "select mlops.model_version_accuracy(%s::text, %s::integer, %s::timestamptz) as v",
            (model, version, since)).fetchone()
        assert row is not None
        return None if row["v"] is None else float(row["v"])

    def detect_degradation(self, model: str, window: str = "1 hour", baseline: str = "7 days", *,
                           max_accuracy_drop: float = 0.05, max_latency_ratio: float = 1.5,
                           max_error_rate_rise: float = 0.05, min_predictions: int = 20) -> pd.DataFrame:
        """Compare the last window with the baseline period per version (accuracy drop, p95 latency ratio, error
        rate rise, each judged with min_predictions on both sides); raises a model_degradation alert in SQL."""
        rows = self.client.conn.execute(
            "select * from mlops.detect_degradation(model => %s::text, \"window\" => %s::interval,"
            " baseline => %s::interval, max_accuracy_drop => %s::float8, max_latency_ratio => %s::float8,"
            " max_error_rate_rise => %s::float8, min_predictions => %s::integer)",
            (model, window, baseline, max_accuracy_drop, max_latency_ratio, max_error_rate_rise,
             min_predictions)).fetchall()
        return pd.DataFrame(rows, columns=["model_version", "metric", "baseline_value", "current_value",
                                           "degraded"])

    # -- partitions and retention ---------------------------------------------------------
    def configure(self, partition_interval: str | None = None, premake: int | None = None,
                  retention: str | None = None) -> dict[str, Any]:
        row = self.client.conn.execute(
            "select mlops.configure_predictions(%s::interval, %s::integer, %s::interval) as c",
            (partition_interval, premake, retention)).fetchone()
        assert row is not None
        return dict(row["c"])

    def drop_before(self, ts: datetime) -> int:
        """Drop whole partitions ending at or before ts; returns how many."""
        row = self.client.conn.execute("select mlops.drop_predictions_before(%s::timestamptz) as n",
                                       (ts,)).fetchone()
        assert row is not None
        return int(row["n"])

    def maintain(self) -> dict[str, Any]:
        row = self.client.conn.execute("select mlops.maintain_predictions() as m").fetchone()
        assert row is not None
        return dict(row["m"])
