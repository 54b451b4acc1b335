"""Binary COPY data built with numpy (pgmlops.copy_binary): what the server reads back equals the
frame's values for every supported type, NULLs and edge values; what cannot be carried exactly
is refused (the caller writes CSV instead)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from pgmlops.copy_binary import binary_copy

TYPES = ["int8", "text", "int4", "float8", "jsonb", "timestamptz", "text", "int8"]
COLUMNS = "a bigint, b text, c integer, d float8, e jsonb, f timestamptz, g text, h bigint"
ZONE = timezone(timedelta(hours=-7, minutes=-30))


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "a": np.array([1, -(2**63), 2**63 - 1, 0], dtype=np.int64),
        "b": ["plain", 'quote " comma , newline \n tab \t backslash \\', "", "é 😀 中"],
        "c": np.array([0, -(2**31), 2**31 - 1, 42], dtype=np.int64),
        "d": [0.1, float("nan"), float("inf"), -0.0],
        "e": ['{"k": [1, 2.5, "x"]}', None, "[]", '"s"'],
        "f": pd.to_datetime(["2026-11-23 18:00:00.123456", "1999-12-31 23:59:59.999999", "2000-01-01 00:00:00",
                             "1970-01-01 00:00:00"], format="ISO8601").tz_localize(ZONE),
        "g": pd.Series(["same", "size", None, "four"], dtype="str"),
        "h": pd.array([7, None, 9, None], dtype="Int64"),
    })


def read_back(conn: psycopg.Connection[Any], df: pd.DataFrame, types: list[str], columns: str) -> list[tuple[Any, ...]]:
    data = binary_copy(df, types)
    assert data is not None
    conn.execute(f"create temp table if not exists back ({columns})")
    conn.execute("truncate back")
    with conn.cursor().copy("copy back from stdin (format binary)") as copy:
        copy.write(data)
    return conn.execute("select * from back order by a").fetchall()


def test_values_read_back_exactly(conn: psycopg.Connection[Any]) -> None:
    df = frame()
    got = read_back(conn, df, TYPES, COLUMNS)
    want = sorted(zip(*(df[c].tolist() for c in df.columns), strict=True), key=lambda r: r[0])
    assert len(got) == 4
    for g, w in zip(got, want, strict=True):
        a, b, c, d, e, f, text, h = w
        assert g[:3] == (a, b, c)  # the empty string stays an empty string, not NULL
        assert (g[3] is None) if np.isnan(d) else (g[3] == d and np.signbit(g[3]) == np.signbit(d))
        assert g[4] == (None if pd.isna(e) else json.loads(e))
        assert g[5] == f.to_pydatetime().astimezone(UTC)  # microseconds kept, any zone
        assert g[6] == (None if pd.isna(text) else text)
        assert g[7] == (None if pd.isna(h) else h)


def test_equal_width_text_and_all_null_columns(conn: psycopg.Connection[Any]) -> None:
    """A text column whose values all have one length takes the fixed-width block; all-NULL columns."""
    df = pd.DataFrame({"a": np.arange(1000, dtype=np.int64), "b": [f"{i:08d}" for i in range(1000)],
                       "c": [None] * 1000, "d": np.full(1000, np.nan)})
    got = read_back(conn, df, ["int8", "text", "text", "float8"], "a bigint, b text, c text, d float8")
    assert got == [(i, f"{i:08d}", None, None) for i in range(1000)]


def test_vectors_read_back_as_float4(conn: psycopg.Connection[Any]) -> None:
    """pgvector's binary form: lists, tuples and arrays of any float width and dimension; None and
    NaN as NULL; each element the float32 nearest the value."""
    conn.execute("create extension if not exists vector")
    vectors = [[0.1, 2.5, -3.0], None, np.array([1e-8, 7.25], dtype=np.float32), float("nan"), (4, 5, 6, 7),
               np.linspace(-1, 1, 300)]
    df = pd.DataFrame({"a": np.arange(len(vectors), dtype=np.int64), "v": pd.Series(vectors, dtype=object)})
    got = read_back(conn, df, ["int8", "vector"], "a bigint, v vector")
    for (a, v), want in zip(got, vectors, strict=True):
        if want is None or isinstance(want, float):
            assert v is None, a
        else:
            assert isinstance(v, str)  # no vector adapter on this connection: pgvector's text, a JSON array
            want32 = np.asarray(want, dtype=np.float64).astype(np.float32)
            assert np.array_equal(np.asarray(json.loads(v), dtype=np.float32), want32), a


@pytest.mark.parametrize(("column", "pg_type"), [
    (pd.Series([datetime(2026, 1, 1), datetime(2026, 1, 2)]), "timestamptz"),  # naive: the session's zone decides
    (pd.Series([1, "2"], dtype=object), "text"),  # not all text
    (pd.Series(["a\x00b", "c"]), "text"),  # NUL: the server names the error on the CSV path
    (pd.Series([0.5, "x"], dtype=object), "float8"),
    (pd.Series([2**31, 1], dtype=np.int64), "int4"),  # out of range
    (pd.Series([1.5, 2.5]), "int8"),
    (pd.Series([2**63, 1], dtype=np.uint64), "int8"),  # beyond bigint
    (pd.Series(["[1,2]", "[3,4]"]), "vector"),  # vectors as text
    (pd.Series([[], [1.0]], dtype=object), "vector"),  # no elements
    (pd.Series([[1.0, float("nan")]], dtype=object), "vector"),
    (pd.Series([[1e39]], dtype=object), "vector"),  # beyond float4
    (pd.Series([[[1.0, 2.0], [3.0, 4.0]]], dtype=object), "vector"),  # not one-dimensional
    (pd.Series([["a", "b"]], dtype=object), "vector"),
    (pd.Series(["\ud800", "x"]), "text"),  # a lone surrogate cannot be UTF-8
])
def test_refuses_what_it_cannot_carry_exactly(column: pd.Series, pg_type: str) -> None:
    assert binary_copy(pd.DataFrame({"x": column}), [pg_type]) is None


def test_types_must_match_columns() -> None:
    with pytest.raises(ValueError, match="2 columns but 1 types"):
        binary_copy(pd.DataFrame({"x": [1], "y": [2]}), ["int8"])
