"""Embedding syncs through the product roles, not as superuser: an mlops_admin login defines,
re-models and drops a sync over its own table; an mlops_writer login (the embed worker) drains
the queue and finishes the cutover; an mlops_reader login searches. Synthetic models whose
vectors are pre-stored in the cache keep the encoder out of it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse, urlunparse

import numpy as np
import pgmlops
import psycopg
import pytest

from .test_embeddings import prestore, synthetic_model

ROLES: dict[str, str | None] = {"emb_admin": "mlops_admin", "emb_writer": "mlops_writer",
                               "emb_reader": "mlops_reader", "emb_bi": None, "emb_admin2": "mlops_admin"}
TEXTS = ["red apple", "green pear", "blue plum"]


def as_user(dsn: str, user: str) -> str:
    u = urlparse(dsn)
    return urlunparse(u._replace(netloc=f"{user}@{u.netloc.split('@', 1)[-1]}"))


@pytest.fixture(scope="module")
def roles_db(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as c:
        for login, role in ROLES.items():
            c.execute(f"drop role if exists {login}")
            c.execute(f"create role {login} login" + (f" in role {role}" if role else ""))
        c.execute("create schema app authorization emb_admin")
        c.execute("grant usage on schema app to emb_writer, emb_reader, emb_bi, emb_admin2")
        for name, dim in (("roles_m1", 3), ("roles_m2", 3)):
            synthetic_model(c, name, dim)
            vectors = np.random.default_rng(dim + len(name)).normal(size=(len(TEXTS), dim))
            prestore(c, name, TEXTS, vectors if name == "roles_m1" else -vectors)
    with psycopg.connect(as_user(dsn, "emb_admin"), autocommit=True) as a:
        a.execute("create table app.notes (id int primary key, body text)")
        a.execute("grant select, insert, update on app.notes to emb_writer")
    return dsn


def model_of(client: pgmlops.Client) -> str:
    row: dict[str, Any] = next(s for s in client.embeddings.status() if s["sync"] == "notes_sync")
    assert row["pending"] == 0 and row["failed"] == 0, row
    return str(row["model"])


def test_admin_defines_writer_drains_reader_searches(roles_db: str) -> None:
    with pgmlops.connect(as_user(roles_db, "emb_admin")) as admin:
        admin.embeddings.create_sync("notes_sync", "app.notes", columns=["body"], model="roles_m1",
                                     destination="app.notes_embeddings")
        # A grant of the owner's own on the destination view must survive generation switches.
        admin.conn.execute("grant select on app.notes_embeddings to emb_bi")
    with pgmlops.connect(as_user(roles_db, "emb_writer")) as writer:
        writer.conn.execute("insert into app.notes values (1, %s), (2, %s), (3, %s)", TEXTS)
        assert writer.embeddings.work("notes_sync") == 3
    with pgmlops.connect(as_user(roles_db, "emb_admin")) as admin:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="no new generation"):
            admin.embeddings.switch_sync("notes_sync")
        admin.embeddings.alter_sync("notes_sync", "roles_m2")
        assert admin.embeddings.switch_sync("notes_sync") is False  # still building
    with pgmlops.connect(as_user(roles_db, "emb_writer")) as writer:
        # The writer embeds the new generation but may not re-create the owner's view: it stays ready.
        assert writer.embeddings.work("notes_sync") == 3
        assert model_of(writer).startswith("roles_m1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            writer.embeddings.switch_sync("notes_sync")
    with pgmlops.connect(as_user(roles_db, "emb_admin2")) as other_admin, \
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="only its owner"):
        other_admin.embeddings.switch_sync("notes_sync")
    with pgmlops.connect(as_user(roles_db, "emb_admin")) as admin:
        assert admin.embeddings.switch_sync("notes_sync") is True
        assert model_of(admin).startswith("roles_m2")
        owner = admin.conn.execute("select viewowner from pg_views where schemaname = 'app' "
                                   "and viewname = 'notes_embeddings'").fetchone()
        assert owner == {"viewowner": "emb_admin"}
    for login in ("emb_reader", "emb_bi"):
        with psycopg.connect(as_user(roles_db, login)) as c:
            assert c.execute("select count(*) from app.notes_embeddings").fetchone() == (3,)
    with pgmlops.connect(as_user(roles_db, "emb_reader")) as reader:
        hits = reader.embeddings.similar("notes_sync", "red apple", k=2)
        assert len(hits) == 2
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.embeddings.drop_sync("notes_sync")
    with pgmlops.connect(as_user(roles_db, "emb_writer")) as writer, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        writer.embeddings.drop_sync("notes_sync")
    with pgmlops.connect(as_user(roles_db, "emb_admin")) as admin:
        admin.embeddings.drop_sync("notes_sync")
        assert admin.conn.execute("select count(*) from mlops.embedding_syncs").fetchone()["count"] == 0
