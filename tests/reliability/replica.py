"""A hot standby of a LocalServer on loopback: pg_basebackup -R from the primary, its own
port and socket directory, streaming replication under the same unprivileged server user."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from pgmlops.server import PG_BIN, LocalServer, _free_port, _server_user


def make_standby(primary: LocalServer, home: Path, name: str = "standby1") -> LocalServer:
    """Base backup of ``primary`` into ``home`` (standby.signal + primary_conninfo with
    application_name ``name``, what synchronous_standby_names refers to), started."""
    home.mkdir(parents=True)
    standby = LocalServer(home)
    standby.socket_dir.mkdir()
    (home / "port").write_text(str(_free_port()))
    standby.log_file.touch()
    user = _server_user()
    if user is not None:
        for p in (home, standby.socket_dir, standby.log_file):
            shutil.chown(p, user)
    primary._run(str(PG_BIN / "pg_basebackup"), "-D", str(standby.data_dir), "-R", "-X", "stream", "-c", "fast",
                 "--no-sync", "-d", f"host={primary.socket_dir} port={primary.port} user=postgres")
    with (standby.data_dir / "postgresql.auto.conf").open("a") as f:  # later lines win over the copied ones
        f.write(f"port = {standby.port}\n"
                f"unix_socket_directories = '{standby.socket_dir}'\n"
                f"primary_conninfo = 'host={primary.socket_dir} port={primary.port} user=postgres "
                f"application_name={name}'\n"
                f"cluster_name = '{name}'\n"
                "hot_standby = on\n")
    standby.start()
    return standby


def wait_replayed(primary_url: str, standby_url: str, timeout: float = 60) -> None:
    """Until the standby has replayed everything the primary had written when called."""
    with psycopg.connect(primary_url, autocommit=True) as p:
        row = p.execute("select pg_catalog.pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    target = row[0]
    deadline = time.monotonic() + timeout
    with psycopg.connect(standby_url, autocommit=True) as s:
        while True:
            got = s.execute("select pg_catalog.pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()
            if got == (True,):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"standby did not replay up to {target} within {timeout} s")
            time.sleep(0.05)


# What the replica tests read back: one object per read path, written through the client API.
MODEL = "rep_model"
EXPERIMENT = "rep_exp"
ENTITY = "rep_customer"
GROUP = "rep_group"
MONITOR = "rep_monitor"
EMBED_MODEL = "rep_embed"
SYNC = "rep_docs"
DIM = 3
UNITS = [f"unit_{i}" for i in range(100)]


def populate(url: str) -> None:
    """pgmlops (and the companion) plus a model with 3 versions and moved aliases, a feature
    group with history, predictions with feedback, a running experiment with assignments, a drift
    monitor that ran, and an embedding sync built from cached vectors (no model is loaded)."""
    import numpy as np
    import pgmlops
    from pgmlops.registry import LinearModel

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension pgmlops cascade")
        conn.execute("create extension pgmlops_python cascade")
    with pgmlops.connect(url) as c:
        c.registry.register(MODEL, task="classification")
        for i in range(3):
            c.registry.log_version(MODEL, LinearModel([0.5, -0.25, 1.0 + i], 0.1), metrics={"auc": 0.7 + i / 100})
        for alias, version in (("champion", 1), ("challenger", 2), ("champion", 2), ("champion", 3)):
            c.registry.set_alias(MODEL, alias, version)
        key = c.features.create_entity(ENTITY)
        c.features.create_group(GROUP, ENTITY, {"amount": "float8", "seg": "text"})
        c.features.write_rows(GROUP, [{key: k, "event_ts": f"2026-01-0{d}T00:00:00Z", "amount": k * d,
                                       "seg": f"s{k % 3}"} for d in (1, 2, 3) for k in range(1, 21)])
        for i in range(60):
            rid = f"rep_req_{i}"
            c.predictions.log(MODEL, request_id=rid, version=1 + i % 3, score=i / 60, latency_ms=5.0 + i % 7,
                              unit_id=UNITS[i % len(UNITS)], created_at=datetime(2026, 1, 1 + i % 3, 12, tzinfo=UTC))
            if i % 2 == 0:
                c.predictions.feedback(rid, correct=i % 4 == 0)
        c.experiments.create(EXPERIMENT, [{"name": "control", "version": 1, "weight": 0.5},
                                          {"name": "treatment", "version": 2, "weight": 0.5}], model=MODEL)
        c.experiments.start(EXPERIMENT)
        c.experiments.assign_batch(EXPERIMENT, UNITS)
        c.conn.execute("create table public.rep_reference as select i / 10.0 as x, 'c' || (i % 4) as c "
                       "from generate_series(1, 300) i")
        c.drift.profile("rep_profile", query="select x, c from public.rep_reference")
        c.drift.monitor(MONITOR, "rep_profile", query="select x * 1.1 as x, c from public.rep_reference")
        c.drift.run(MONITOR)
        c.embeddings.register_model(EMBED_MODEL, DIM, "no-such-pkg", "0" * 64)
        c.conn.execute(f"create table public.{SYNC} (id int primary key, body text)")
        c.conn.execute(f"insert into public.{SYNC} select g, 'doc ' || g from generate_series(1, 40) g")
        vectors = np.random.default_rng(7).normal(size=(40, DIM))
        c.conn.execute("select mlops.embedding_cache_store(array(select mlops.content_sha256('doc ' || g) "
                       "from generate_series(1, 40) g order by g), %s::text[]::vector[], %s::text)",
                       (["[" + ",".join(f"{x:.6f}" for x in v) + "]" for v in vectors], EMBED_MODEL))
        c.embeddings.create_sync(SYNC, f"public.{SYNC}", columns=["body"], model=EMBED_MODEL)
        assert c.embeddings.work(SYNC) == 40  # all cache hits
