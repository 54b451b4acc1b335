"""Set-based ingestion (COPY staging and log_predictions): fast path, claiming path, idempotency
under re-logging, in-batch repeats and concurrent overlapping batches, version mapping."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pgmlops
import psycopg
import pytest
from psycopg.types.json import Jsonb

Conn = psycopg.Connection[Any]
MODEL = "ingest"
T0 = datetime(2025, 9, 9, 10, tzinfo=UTC)


@pytest.fixture(scope="module", autouse=True)
def model(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("insert into mlops.models (name, task) values (%s::text, 'classification') on conflict do nothing",
                  (MODEL,))
        for v in (1, 2, 3):
            c.execute("insert into mlops.model_versions (model_id, version, flavor, artifact, artifact_sha256)"
                      " select id, %s::integer, 'custom', '\\x00'::bytea, repeat('a', 64) from mlops.models"
                      " where name = %s::text on conflict do nothing", (v, MODEL))
        c.execute("insert into mlops.model_aliases (model_id, alias, version_id)"
                  " select m.id, 'champion', v.id from mlops.models m join mlops.model_versions v on v.model_id = m.id"
                  " where m.name = %s::text and v.version = 2 on conflict do nothing", (MODEL,))


def frame(ids: list[str], label: str = "a") -> pd.DataFrame:
    return pd.DataFrame({"request_id": ids, "model": MODEL, "version": 1, "label": label,
                         "latency_ms": 1.5, "features": [{"i": i} for i in range(len(ids))],
                         "created_at": [T0 + timedelta(seconds=i) for i in range(len(ids))]})


def consistent(conn: Conn, prefix: str) -> tuple[int, int, int]:
    """(rows, distinct request_ids, request keys pointing at their row) for ids starting with prefix."""
    row = conn.execute(
        "select (select count(*) from mlops.predictions where request_id like %s),"
        " (select count(distinct request_id) from mlops.predictions where request_id like %s),"
        " (select count(*) from mlops.prediction_requests r join mlops.predictions p"
        "   on p.id = r.prediction_id and p.request_id = r.request_id"
        "  where r.request_id like %s)", (prefix + "%",) * 3).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def staged(conn: Conn, df: pd.DataFrame) -> tuple[int, int]:
    """COPY df into the staging table and ingest it in one transaction; returns (new rows, request
    key inserts attempted in that transaction, counting rolled-back attempts)."""
    with conn.transaction():
        conn.execute("select mlops.create_prediction_staging()")
        with conn.cursor().copy("copy pg_temp.mlops_prediction_staging (request_id, model, version, label,"
                                " latency_ms, created_at) from stdin") as cp:
            for r in df.to_dict("records"):
                cp.write_row((r["request_id"], r["model"], int(r["version"]), r["label"], float(r["latency_ms"]),
                              r["created_at"]))
        row = conn.execute("select mlops.log_staged_predictions()").fetchone()
        tried = conn.execute("select n_tup_ins from pg_stat_xact_user_tables"
                             " where relid = 'mlops.prediction_requests'::regclass").fetchone()
    assert row is not None and tried is not None
    return int(row[0]), int(tried[0])


def test_fast_path_and_relog(client: pgmlops.Client, conn: Conn) -> None:
    ids = [f"fp-{i}" for i in range(300)]
    assert client.predictions.log_many(frame(ids), progress=False) == 300
    assert consistent(conn, "fp-") == (300, 300, 300)
    # the same batch again: nothing new
    assert client.predictions.log_many(frame(ids, label="b"), progress=False) == 0
    assert consistent(conn, "fp-") == (300, 300, 300)
    # the probe of the first keys finds them logged: straight to the claiming path, which inserts
    # no key (a fast attempt would have inserted the first key before failing)
    assert staged(conn, frame(ids, label="b")) == (0, 0)
    assert conn.execute("select count(*) from mlops.predictions where request_id like 'fp-%%' and label = 'b'"
                        ).fetchone() == (0,)


def test_fallback_when_a_late_key_exists(conn: Conn) -> None:
    # keys beyond the 1000 probed ones exist: the fast attempt hits unique_violation, is rolled
    # back, and the claiming path inserts only the new rows
    old = [f"late-{i:05d}" for i in range(1200, 1300)]
    assert staged(conn, frame(old)) == (100, 100)
    ids = [f"late-{i:05d}" for i in range(1500)]
    new, tried = staged(conn, frame(ids, label="b"))
    assert new == 1400
    assert tried > 1500  # the rolled-back fast attempt plus the claiming insert
    assert consistent(conn, "late-") == (1500, 1500, 1500)
    assert conn.execute("select count(*) from mlops.predictions where request_id like 'late-%%' and label = 'a'"
                        ).fetchone() == (100,)  # the first rows of the old keys were kept


def test_repeats_inside_one_batch(conn: Conn) -> None:
    ids = [f"rep-{i}" for i in range(50)] * 2
    new, tried = staged(conn, frame(ids))
    assert new == 50
    assert tried > 50  # no key was logged before: the fast attempt ran and failed on the first repeat
    assert consistent(conn, "rep-") == (50, 50, 50)
    n = conn.execute("select mlops.log_predictions(%s::jsonb)",
                     (Jsonb([{"model": MODEL, "request_id": "rep-j"}] * 3 + [{"model": MODEL, "request_id": "rep-k"}]),
                      )).fetchone()
    assert n == (2,)
    assert consistent(conn, "rep-") == (52, 52, 52)


def test_fast_path_without_conflicts_inserts_once(conn: Conn) -> None:
    new, tried = staged(conn, frame([f"once-{i}" for i in range(2000)]))
    assert (new, tried) == (2000, 2000)
    assert consistent(conn, "once-") == (2000, 2000, 2000)


def test_generated_request_ids_and_version_mapping(conn: Conn) -> None:
    rows = [{"model": MODEL, "version": 1, "unit_id": "vm-1"},
            {"model": MODEL, "version": 3, "unit_id": "vm-3"},
            {"model": MODEL, "alias": "champion", "unit_id": "vm-champion"},
            {"model": MODEL, "unit_id": "vm-latest"},
            {"model": MODEL, "version": 1, "alias": "champion", "unit_id": "vm-both"}]  # version wins
    assert conn.execute("select mlops.log_predictions(%s::jsonb)", (Jsonb(rows),)).fetchone() == (5,)
    got = dict(conn.execute("select unit_id, model_version from mlops.predictions where unit_id like 'vm-%%'"
                            ).fetchall())
    assert got == {"vm-1": 1, "vm-3": 3, "vm-champion": 2, "vm-latest": 3, "vm-both": 1}
    ids = conn.execute("select p.request_id, r.prediction_id = p.id from mlops.predictions p"
                       " join mlops.prediction_requests r using (request_id) where p.unit_id like 'vm-%%'").fetchall()
    assert len(ids) == 5 and all(ok and len(rid) == 36 for rid, ok in ids)  # generated uuids, keyed
    ver = conn.execute("select model_version_id = v.id from mlops.predictions p join mlops.model_versions v"
                       " on v.version = p.model_version join mlops.models m on m.id = v.model_id and m.name = p.model"
                       " where p.unit_id like 'vm-%%'").fetchall()
    assert ver == [(True,)] * 5


def test_concurrent_overlapping_copy_batches(dsn: str, conn: Conn) -> None:
    writers, per, shared = 4, 3000, 1000
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []
    counts: list[int] = []

    def work(k: int) -> None:
        try:
            ids = [f"cc-s{i}" for i in range(shared)] + [f"cc-w{k}-{i}" for i in range(per - shared)]
            df = frame(ids).sample(frac=1.0, random_state=k).reset_index(drop=True)
            with pgmlops.connect(dsn) as c:
                barrier.wait()
                for start in range(0, per, 700):
                    counts.append(c.predictions.log_many(df.iloc[start:start + 700], progress=False))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    expected = shared + writers * (per - shared)
    assert sum(counts) == expected
    assert consistent(conn, "cc-") == (expected, expected, expected)


def test_log_many_chunks_are_one_transaction(client: pgmlops.Client, conn: Conn) -> None:
    # repeats across chunks are skipped; the CSV of chunk k+1 is written while chunk k is ingested
    df = frame([f"ch-{i}" for i in range(250)] + ["ch-0", "ch-249"])
    assert client.predictions.log_many(df, chunk_size=100, progress=False) == 250
    assert consistent(conn, "ch-") == (250, 250, 250)
    # a bad row in the last chunk rolls back the chunks already ingested, and the chunk thread stops
    bad = frame([f"chb-{i}" for i in range(250)])
    bad.loc[220, "latency_ms"] = -1.0
    with pytest.raises(psycopg.Error) as info:
        client.predictions.log_many(bad, chunk_size=100, progress=False)
    assert info.value.sqlstate == "22023" and "latency_ms" in str(info.value)
    assert consistent(conn, "chb-") == (0, 0, 0)
    assert not [t for t in threading.enumerate() if t.name == "pgmlops-copy"]


def test_log_many_times_in_any_zone(client: pgmlops.Client, conn: Conn) -> None:
    # aware datetimes are sent as UTC text (vectorized), NaT as NULL (= now)
    times = pd.Series([T0, T0 + timedelta(microseconds=123457), pd.NaT],
                      dtype="datetime64[us, UTC]").dt.tz_convert("Europe/Paris")
    df = pd.DataFrame({"request_id": ["tz-1", "tz-2", "tz-3"], "model": MODEL, "created_at": times})
    assert client.predictions.log_many(df, progress=False) == 3
    got = dict(conn.execute("select request_id, created_at from mlops.predictions where request_id like 'tz-%%'"
                            ).fetchall())
    assert got["tz-1"] == T0
    assert got["tz-2"] == T0 + timedelta(microseconds=123457)
    assert abs(got["tz-3"] - datetime.now(UTC)) < timedelta(hours=1)


def test_csv_chunks_reassemble_and_stop() -> None:
    """The CSV writer thread: chunks in order that add up to the whole frame; it stops when the
    caller leaves early; its errors reach the caller. The keys of all rows come in index order."""
    from pgmlops.predictions import CopyChunks, ordered_keys

    df = pd.DataFrame({"request_id": [f"c{i}" for i in range(12_345)], "id": range(12_345),
                       "score": [i / 7 for i in range(12_345)]})
    with CopyChunks(df, 5_000) as chunks:
        got = list(chunks)
    assert [n for n, _ in got] == [5_000, 5_000, 2_345]
    assert "".join(text for _, text in got) == df.to_csv(header=False, index=False)
    keys = ordered_keys(df)
    assert list(keys.columns) == ["request_id", "id"]
    assert list(keys["request_id"]) == sorted(f"c{i}" for i in range(12_345))
    assert all(keys["request_id"] == "c" + keys["id"].astype(str))  # each key keeps its row's id

    with CopyChunks(df, 1_000) as chunks:
        it = iter(chunks)
        next(it)
    assert not chunks._worker.is_alive()  # left after one chunk of thirteen: the thread stopped

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("cannot format")

    bad = df.assign(score=[Unprintable() if i == 9_000 else 0.5 for i in range(len(df))])
    with pytest.raises(RuntimeError, match="cannot format"), CopyChunks(bad, 5_000) as chunks:
        list(chunks)


def test_log_many_direct_path_and_its_fallbacks(dsn: str, conn: Conn) -> None:
    """log_many COPYs straight into mlops.predictions (no staging table in the session) with
    versions resolved as the SQL path resolves them, ids keyed, generated request ids and the
    transaction's now(); repeats, old keys, a missing partition and a wrong vector dimension
    take the staging path, with the same results and errors."""
    rows = pd.DataFrame([{"model": MODEL, "version": 1, "unit_id": "dp-1"},
                         {"model": MODEL, "version": 3, "unit_id": "dp-3"},
                         {"model": MODEL, "alias": "champion", "unit_id": "dp-champion"},
                         {"model": MODEL, "unit_id": "dp-latest"},
                         {"model": MODEL, "version": 1, "alias": "champion", "unit_id": "dp-both"}])
    with pgmlops.connect(dsn) as fresh:
        assert fresh.predictions.log_many(rows, progress=False) == 5
        staging = fresh.conn.execute("select pg_catalog.to_regclass('pg_temp.mlops_prediction_staging') as t"
                                     ).fetchone()
        assert staging is not None and staging["t"] is None  # the direct path only
    got = {r[0]: r[1:] for r in conn.execute(
        "select p.unit_id, p.model_version, p.alias, p.model_version_id = v.id, r.prediction_id = p.id,"
        " length(p.request_id), p.created_at > now() - interval '1 hour'"
        " from mlops.predictions p join mlops.models m on m.name = p.model"
        " join mlops.model_versions v on v.model_id = m.id and v.version = p.model_version"
        " join mlops.prediction_requests r on r.request_id = p.request_id where p.unit_id like 'dp-%%'").fetchall()}
    assert got == {"dp-1": (1, None, True, True, 36, True), "dp-3": (3, None, True, True, 36, True),
                   "dp-champion": (2, "champion", True, True, 36, True), "dp-latest": (3, None, True, True, 36, True),
                   "dp-both": (1, "champion", True, True, 36, True)}

    with pgmlops.connect(dsn) as fresh:
        old = frame([f"dq-{i}" for i in range(40)])
        assert fresh.predictions.log_many(old, progress=False) == 40
        mixed = frame([f"dq-{i}" for i in range(20, 60)] + ["dq-59"], label="b")  # 20 logged, one repeat
        assert fresh.predictions.log_many(mixed, progress=False) == 20  # through the staging path
        backfill = frame(["dq-old"]).assign(created_at=datetime(2001, 2, 3, tzinfo=UTC))  # no partition yet
        assert fresh.predictions.log_many(backfill, progress=False) == 1
    assert consistent(conn, "dq-") == (61, 61, 61)
    assert conn.execute("select count(*) filter (where label = 'a'), count(*) filter (where label = 'b')"
                        " from mlops.predictions where request_id like 'dq-%%'").fetchone() == (41, 20)

    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("insert into mlops.model_versions (model_id, version, flavor, artifact, artifact_sha256, signature)"
                  " select id, 9, 'custom', '\\x00'::bytea, repeat('a', 64), '{\"feature_vector_dim\": 3}'"
                  " from mlops.models where name = %s::text on conflict do nothing", (MODEL,))
    vectors = pd.DataFrame({"model": MODEL, "version": 9, "request_id": ["dv-1", "dv-2"],
                            "feature_vector": [[1.0, 2.0, 3.0], [1.0, 2.0]]})
    with pgmlops.connect(dsn) as fresh, pytest.raises(psycopg.Error) as info:
        fresh.predictions.log_many(vectors, progress=False)
    assert info.value.sqlstate == "22000" and "feature_vector" in str(info.value)
    assert consistent(conn, "dv-") == (0, 0, 0)


def test_log_many_repeat_in_a_late_chunk_loses_nothing(dsn: str, conn: Conn) -> None:
    """The direct path COPYs all keys in key order, in slices that are not the row chunks' own
    keys: a repeat found after earlier slices went in must undo them all, and the staging path
    then logs every new row (keys left from the earlier slices would make it skip rows that were
    never written)."""
    ids = [f"dl-{i}" for i in range(300)]
    with pgmlops.connect(dsn) as fresh:
        assert fresh.predictions.log_many(frame(ids[250:260]), progress=False) == 10
        # in key order "dl-25x" falls in the second of three slices of the keys (in the rows, the last chunk)
        assert fresh.predictions.log_many(frame(ids, label="b"), chunk_size=100, progress=False) == 290
    assert consistent(conn, "dl-") == (300, 300, 300)
    assert conn.execute("select count(*) filter (where label = 'a'), count(*) filter (where label = 'b')"
                        " from mlops.predictions where request_id like 'dl-%%'").fetchone() == (10, 290)


@pytest.mark.parametrize("limit", [None, 0])  # fixed-width bytes, and str objects past the size limit
def test_key_order_is_the_byte_order_of_the_key_index(conn: Conn, monkeypatch: pytest.MonkeyPatch,
                                                       limit: int | None) -> None:
    from pgmlops import predictions

    if limit is not None:
        monkeypatch.setattr(predictions, "_KEY_SORT_BYTES", limit)
    ids = pd.Series(["b", "a10", "a9", "é", "z", "\U0001f600", "A", "a", "a", "ab", 7], dtype=object)
    order = predictions.key_order(ids)
    server = [r[0] for r in conn.execute("select k from unnest(%s::text[]) k order by k collate \"C\"",
                                         ([str(x) for x in ids],)).fetchall()]
    assert [str(ids[i]) for i in order] == server
    assert [i for i in order if ids[i] == "a"] == [7, 8]  # stable: equal keys keep their rows' order


def test_client_generated_request_ids_are_uuid4_text() -> None:
    from pgmlops.predictions import _uuid_texts

    ids = _uuid_texts(3)
    assert len(set(ids)) == 3 and all(len(i) == 36 and i[14] == "4" and i[19] in "89ab" for i in ids)


@pytest.mark.parametrize(("column", "value", "state"), [
    ("latency_ms", -1.0, "22023"), ("latency_ms", float("inf"), "22023"), ("latency_ms", "NaN", "22023"),
    ("confidence", 1.5, "22023"), ("confidence", "NaN", "22023"), ("score", float("-inf"), "22023"),
    ("score", "NaN", "22023"), ("request_id", "r" * 201, "22023"),
    ("features", {"blob": os.urandom(40_000).hex()}, "54000")])  # incompressible: > 64 KiB stored
def test_log_many_rules_are_the_sql_rules(client: pgmlops.Client, conn: Conn, column: str, value: Any,
                                          state: str) -> None:
    """A row that breaks a rule of log_prediction never takes the direct COPY: the staging path's
    SQL check names it, and nothing of the call is written."""
    df = frame([f"rule-{column}-{i}" for i in range(3)])
    df[column] = df[column].astype(object) if column in df.columns else None
    df.at[1, column] = value
    with pytest.raises(psycopg.Error) as info:
        client.predictions.log_many(df, progress=False)
    assert info.value.sqlstate == state and column in str(info.value)
    assert consistent(conn, f"rule-{column}-") == (0, 0, 0)


def test_log_many_json_as_text_objects_or_null(client: pgmlops.Client, conn: Conn) -> None:
    """features / output given as JSON text (sent as it is), as Python objects (serialized), or null
    (None, NaN, pandas' str NA) are stored alike."""
    values = [{"a": 1, "s": "x,\"y\"\n"}, None, [1, 2.5]]
    text = [None if v is None else json.dumps(v) for v in values]
    cases = {"objects": pd.Series(values, dtype=object), "text": pd.Series(text, dtype=object),
             "str dtype": pd.Series(text, dtype="str"), "all null": pd.Series([None, float("nan"), None])}
    for n, (name, column) in enumerate(cases.items()):
        ids = [f"js{n}-{i}" for i in range(3)]
        df = pd.DataFrame({"request_id": ids, "model": MODEL, "features": column, "output": column})
        assert client.predictions.log_many(df, progress=False) == 3
        got = conn.execute("select features, output from mlops.predictions where request_id = any(%s)"
                           " order by request_id", (ids,)).fetchall()
        want = [None] * 3 if name == "all null" else values
        assert [r[0] for r in got] == want and [r[1] for r in got] == want, name


def test_log_many_chunks_go_binary_or_csv_and_store_alike(client: pgmlops.Client, conn: Conn) -> None:
    """Chunks whose values binary COPY carries exactly go binary (the direct path's usual case);
    a chunk it cannot carry (here integers among the unit ids) goes as CSV in the same call."""
    from pgmlops.predictions import COPY_TYPES, CopyChunks

    n = 300
    df = pd.DataFrame({"request_id": [f"bc-{i}" for i in range(n)], "model": MODEL, "version": 1,
                       "unit_id": pd.Series([f"u{i}" if i < 150 else i for i in range(n)], dtype=object),
                       "label": ["é", "x", None] * 100, "score": [0.25, float("nan"), 1.0] * 100,
                       "features": [{"i": i} for i in range(n)],
                       "created_at": [T0 + timedelta(seconds=i) for i in range(n)]})
    with client.conn.transaction():
        batch, direct = client.predictions._resolved_batch(df)
        assert direct
        types = [COPY_TYPES[c] for c in batch.columns]
        with CopyChunks(batch, 150, types) as chunks:
            formats = [type(data) for _, data in chunks]
        assert formats == [bytes, str]
    assert client.predictions.log_many(df, chunk_size=150, progress=False) == n
    got = conn.execute("select request_id, unit_id, label, score, features, created_at, model_version"
                       " from mlops.predictions where request_id like 'bc-%' order by created_at").fetchall()
    assert [r[0] for r in got] == list(df["request_id"])
    assert [r[1] for r in got] == [f"u{i}" if i < 150 else str(i) for i in range(n)]
    assert [r[2] for r in got] == ["é", "x", None] * 100
    assert [r[3] for r in got] == [0.25, None, 1.0] * 100
    assert [r[4] for r in got] == [{"i": i} for i in range(n)]
    assert [r[5] for r in got] == list(df["created_at"]) and {r[6] for r in got} == {1}
    assert consistent(conn, "bc-") == (n, n, n)


def test_log_many_under_a_non_utf8_client_encoding_sends_csv(dsn: str, conn: Conn) -> None:
    """Binary text is UTF-8 bytes, so a session whose client_encoding is not UTF-8 gets CSV, which
    psycopg encodes in the session's encoding: the text arrives intact, in the rows and in the
    request keys alike (a key stored otherwise than its row's id would let a repeat in)."""
    conn.execute("select mlops.maintain_predictions()")  # today's partition exists: the direct path can take it
    with pgmlops.connect(dsn) as latin:
        latin.conn.execute("set client_encoding = 'LATIN1'")
        df = pd.DataFrame({"model": MODEL, "version": 1, "request_id": ["enc-1", "enc-é"], "label": ["é", "ü"]})
        assert latin.predictions.log_many(df, progress=False) == 2
        assert latin.predictions.log_many(df, progress=False) == 0
    got = conn.execute("select label from mlops.predictions where request_id like 'enc-%' order by request_id")
    assert [r[0] for r in got.fetchall()] == ["é", "ü"]
    assert consistent(conn, "enc-") == (2, 2, 2)


def test_log_many_feature_vectors_binary_or_as_text(dsn: str, conn: Conn) -> None:
    """Vectors given as sequences go in pgvector's binary form on the direct path (float4 values);
    vectors given as text go as CSV; NULLs either way."""
    from pgmlops.predictions import COPY_TYPES, _copy_data

    vectors = [[0.1, 2.5, -3.0], None, np.array([1e-8, 7.25, 0.0], dtype=np.float32), (4, 5, 6)]
    as_text = ["[0.1,2.5,-3]", None, "[1e-08,7.25,0]", "[4,5,6]"]
    conn.execute("select mlops.maintain_predictions()")  # today's partition exists: the direct path can take it
    for prefix, column in (("fvb", pd.Series(vectors, dtype=object)), ("fvt", pd.Series(as_text, dtype=object))):
        chunk = _copy_data(pd.DataFrame({"feature_vector": column}), [COPY_TYPES["feature_vector"]])
        assert isinstance(chunk, bytes if prefix == "fvb" else str)
        df = pd.DataFrame({"model": MODEL, "version": 1, "request_id": [f"{prefix}-{i}" for i in range(4)],
                           "feature_vector": column})
        with pgmlops.connect(dsn) as fresh:
            assert fresh.predictions.log_many(df, progress=False) == 4
            staging = fresh.conn.execute("select pg_catalog.to_regclass('pg_temp.mlops_prediction_staging') as t"
                                         ).fetchone()
            assert staging is not None and staging["t"] is None, prefix  # the direct path only
        got = conn.execute("select feature_vector::text from mlops.predictions where request_id like %s"
                           " order by request_id", (prefix + "-%",)).fetchall()
        assert [None if r[0] is None else np.asarray(json.loads(r[0]), dtype=np.float32).tolist() for r in got] == [
            None if v is None else np.asarray(v, dtype=np.float64).astype(np.float32).tolist() for v in vectors]


def test_staged_ingest_without_staging_table_is_refused(dsn: str) -> None:
    """A session that never made a staging table gets 55000 with the call to make, from the public
    function and from the private one it wraps (which takes rows or null, never SQL text)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for sql in ("select mlops.log_staged_predictions()", "select mlops._ingest_predictions(null)"):
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="create_prediction_staging"):
                conn.execute(sql)
        with pytest.raises(psycopg.errors.UndefinedFunction):
            conn.execute("select mlops._ingest_predictions('pg_temp.x'::text, '[]'::jsonb)")
