"""DataFrames as PostgreSQL binary COPY data, built column by column with numpy.

pandas' CSV writer formats every cell in C while holding the GIL (about 6.6 s per 1M predictions);
here each column becomes one length array and one byte blob, and numpy scatters them into rows.
Numbers, times and vectors go in their binary form, so the server parses no text for them either.
Only columns whose values map exactly are encoded: :func:`binary_copy` returns None otherwise and
the caller writes CSV, which stays the reference. Text is sent as UTF-8: use it only on sessions
whose client_encoding is UTF-8.

Format (PostgreSQL docs, COPY, "Binary Format"): a header, then per row an int16 field count and
per field an int32 byte length (-1 for NULL) and the bytes of the type's binary send format, then
an int16 -1 trailer. All integers are big-endian.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags 0, no header extension
TRAILER = b"\xff\xff"
#: Types :func:`binary_copy` encodes.
TYPES = ("text", "jsonb", "int4", "int8", "float8", "timestamptz", "vector")
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC in microseconds since 1970
_FIXED = {"int4": ">i4", "int8": ">i8", "float8": ">f8", "timestamptz": ">i8"}


def _text(col: pd.Series, prefix: bytes = b"") -> tuple[np.ndarray, np.ndarray] | None:
    """(lengths, blob) of a column of str (or null) values as UTF-8, each after prefix; None when
    a value is not a str."""
    if pd.api.types.infer_dtype(col, skipna=True) not in ("string", "empty"):
        return None
    null = col.isna().to_numpy(dtype=bool)
    present: list[str] = col.to_numpy(dtype=object)[~null].tolist()
    joined = "".join(present)
    if "\x00" in joined:
        return None  # text cannot hold NUL: the CSV path lets the server name the error
    try:
        blob = joined.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the CSV path reports it
        return None
    if len(blob) == len(joined):  # ASCII: byte lengths are the str lengths
        sizes = np.fromiter(map(len, present), dtype=np.int64, count=len(present))
    else:
        encoded = [v.encode("utf-8") for v in present]
        sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        blob = b"".join(encoded)
    data = np.frombuffer(blob, dtype=np.uint8)
    if prefix:  # jsonb: a version byte before each value's text
        starts = np.zeros(len(sizes), dtype=np.int64)
        np.cumsum(sizes[:-1], out=starts[1:])
        data = np.insert(data, np.repeat(starts, len(prefix)), np.tile(np.frombuffer(prefix, np.uint8), len(sizes)))
        sizes = sizes + len(prefix)
    lengths = np.full(len(col), -1, dtype=np.int64)
    lengths[~null] = sizes
    return lengths, data


def _fixed(col: pd.Series, pg_type: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(lengths, blob) of an int / float / tz-aware time column in its binary form; None when the
    dtype does not map exactly (object, naive times, ...)."""
    dtype = col.dtype
    if pg_type == "timestamptz":
        if not isinstance(dtype, pd.DatetimeTZDtype):
            return None
        null = col.isna().to_numpy()
        micros = col.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]").astype(np.int64)
        values = micros[~null] - _PG_EPOCH_US
    elif pg_type == "float8":
        if dtype != np.float64:
            return None
        raw = col.to_numpy()
        null = np.isnan(raw)  # NaN is written as NULL, as pandas writes it in CSV
        values = raw[~null]
    else:
        if isinstance(dtype, pd.Int64Dtype):
            null = col.isna().to_numpy()
            values = col.to_numpy(dtype=np.int64, na_value=0)[~null]
        elif isinstance(dtype, np.dtype) and (dtype.kind == "i" or (dtype.kind == "u" and dtype.itemsize < 8)):
            null = np.zeros(len(col), dtype=bool)
            values = col.to_numpy()
        else:
            return None
        if pg_type == "int4" and len(values) and (values.min() < -(2**31) or values.max() >= 2**31):
            return None  # out of range: the CSV path lets the server name the error
    big = np.ascontiguousarray(values.astype(_FIXED[pg_type]))
    lengths = np.where(null, -1, big.dtype.itemsize).astype(np.int64)
    return lengths, big.view(np.uint8)


def _vector(col: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(lengths, blob) of a column of number sequences (or null) in pgvector's binary form: int16
    dimensions, int16 0, then the values as float4 (the float32 nearest each value); None for
    vectors given as text and for values pgvector refuses (no elements, over 16,000, not finite)."""
    values = col.to_numpy(dtype=object)
    null = np.fromiter((v is None or (isinstance(v, float) and math.isnan(v)) for v in values),
                       dtype=bool, count=len(values))
    present = values[~null].tolist()
    if any(isinstance(v, (str, bytes)) for v in present):
        return None
    try:
        arrays = [np.asarray(v, dtype=np.float64) for v in present]
    except (TypeError, ValueError):
        return None
    dims = np.fromiter((a.size if a.ndim == 1 else -1 for a in arrays), dtype=np.int64, count=len(arrays))
    if len(dims) and (dims.min() < 1 or dims.max() > 16000):
        return None
    with np.errstate(over="ignore"):
        floats = (np.concatenate(arrays) if arrays else np.zeros(0)).astype(">f4")
    if not np.isfinite(floats).all():  # NaN, inf, or beyond float4
        return None
    sizes = 4 + 4 * dims
    starts = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    data = np.zeros(int(sizes.sum()), dtype=np.uint8)
    headers = np.zeros((len(dims), 4), dtype=np.uint8)
    headers[:, :2] = dims.astype(">i2").view(np.uint8).reshape(-1, 2)
    _scatter(data, starts, headers)
    _place(data, starts + 4, 4 * dims, floats.view(np.uint8))
    lengths = np.full(len(values), -1, dtype=np.int64)
    lengths[~null] = sizes
    return lengths, data


def binary_copy(df: pd.DataFrame, types: Sequence[str]) -> bytes | None:
    """The whole COPY ... (format binary) stream of df's rows, column i as types[i]; None when some
    column cannot be encoded exactly."""
    if len(types) != len(df.columns):
        raise ValueError(f"binary_copy: {len(df.columns)} columns but {len(types)} types")
    fields: list[tuple[np.ndarray, np.ndarray]] = []
    for (_, col), pg_type in zip(df.items(), types, strict=True):
        if pg_type not in TYPES:
            return None
        field = (_text(col, b"\x01" if pg_type == "jsonb" else b"") if pg_type in ("text", "jsonb")
                 else _vector(col) if pg_type == "vector" else _fixed(col, pg_type))
        if field is None:
            return None
        fields.append(field)
    n = len(df)
    row_size = np.full(n, 2, dtype=np.int64)
    for lengths, _ in fields:
        row_size += 4 + np.maximum(lengths, 0)
    row_start = np.zeros(n, dtype=np.int64)
    if n > 1:
        np.cumsum(row_size[:-1], out=row_start[1:])
    out = np.empty(len(HEADER) + int(row_size.sum()) + len(TRAILER), dtype=np.uint8)
    out[:len(HEADER)] = np.frombuffer(HEADER, np.uint8)
    out[len(out) - len(TRAILER):] = np.frombuffer(TRAILER, np.uint8)
    body = out[len(HEADER):len(out) - len(TRAILER)]
    # fields of one width in every row (fixed types without NULL) go with their neighbours as
    # one block of columns: one scatter for the block instead of two per field
    block = [np.full(n, len(fields), dtype=">i2").view(np.uint8).reshape(n, 2)]
    block_start = row_start
    pos = row_start + 2
    for lengths, data in fields:
        words = lengths.astype(">i4").view(np.uint8).reshape(n, 4)
        width = int(lengths[0]) if n else 0
        if n and width >= 0 and len(data) == n * width and bool((lengths == width).all()):
            block.append(np.concatenate([words, data.reshape(n, width)], axis=1) if width else words)
            pos = pos + 4 + width
            continue
        if block:
            _scatter(body, block_start, np.concatenate(block, axis=1))
            block = []
        _scatter(body, pos, words)
        full = np.maximum(lengths, 0)
        _place(body, pos + 4, full, data)
        pos = pos + 4 + full
        block_start = pos
    if block:
        _scatter(body, block_start, np.concatenate(block, axis=1))
    return out.tobytes()


def _place(body: np.ndarray, starts: np.ndarray, sizes: np.ndarray, data: np.ndarray) -> None:
    """Consecutive pieces of data, sizes[i] bytes each, to body[starts[i]:starts[i] + sizes[i]]."""
    has = sizes > 0
    if not has.any():
        return
    starts, sizes = starts[has], sizes[has]
    src = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=src[1:])
    body[np.repeat(starts - src, sizes) + np.arange(len(data))] = data


def _scatter(body: np.ndarray, starts: np.ndarray, rows: np.ndarray) -> None:
    """body[starts[i] + j] = rows[i, j] for every row i and column j."""
    small = len(body) < 2**31  # int32 positions: half the memory traffic of int64
    first: np.ndarray = starts.astype(np.int32 if small else np.int64)
    index = first[:, None] + np.arange(rows.shape[1], dtype=first.dtype)
    body[index.ravel()] = rows.ravel()
