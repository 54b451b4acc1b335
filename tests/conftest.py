"""Database fixtures: one real PostgreSQL 15 cluster (pgvector, plpython3u) per test session,
run as an unprivileged user even when pytest runs as root, stopped at the end.

Each install mode (extension, bundled, alembic) is built once into a template database;
each test module gets a fresh database cloned from the template (pytest-postgresql's
DatabaseJanitor creates and drops it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pgmlops
import psycopg
import pytest
from pgmlops.server import LocalServer
from psycopg import sql
from pytest_postgresql.janitor import DatabaseJanitor

ROOT = Path(__file__).resolve().parents[1]
MODES = ("extension", "bundled", "alembic")

# CI replays the same property-test examples on every run (a red CI then means a change broke
# something, not a lucky draw); local runs keep exploring new examples.
hypothesis.settings.register_profile("ci", derandomize=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    hypothesis.settings.load_profile("ci")


def install_mode(dsn: str, mode: str, python: bool = True, version: str | None = None) -> None:
    """Install pgmlops into an empty database the way a user of ``mode`` would."""
    if mode == "extension":
        with psycopg.connect(dsn, autocommit=True) as conn:
            if version:
                conn.execute(sql.SQL("create extension pgmlops version {} cascade").format(sql.Literal(version)))
            else:
                conn.execute("create extension pgmlops cascade")
            if python:
                conn.execute("create extension pgmlops_python cascade")
    elif mode == "bundled":
        pgmlops.install(dsn, version=version, python=python)
    elif mode == "alembic":
        target = f"pgmlops_{version.replace('.', '_')}" if version else "heads"
        subprocess.run([sys.executable, "-m", "alembic", "-x", f"dsn={dsn}", "upgrade", target],
                       cwd=ROOT, check=True, capture_output=True, text=True)
    else:
        raise ValueError(mode)


class Cluster:
    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.templates: set[str] = set()
        self.counter = 0

    def url(self, dbname: str) -> str:
        return self.server.url(dbname)

    def janitor(self, dbname: str, template: str | None = None) -> DatabaseJanitor:
        return DatabaseJanitor(user="postgres", host=str(self.server.socket_dir), port=self.server.port,
                               dbname=dbname, password=None, template_dbname=template)

    def template(self, mode: str, python: bool = True) -> str:
        name = f"tmpl_{mode}_{'py' if python else 'core'}"
        if name not in self.templates:
            self.janitor(name).init()
            install_mode(self.url(name), mode, python)
            self.templates.add(name)
        return name

    def new_database(self, prefix: str, mode: str | None = "extension", python: bool = True) -> str:
        self.counter += 1
        name = f"{prefix}_{self.counter}"[:63]
        template = self.template(mode, python) if mode else None
        self.janitor(name, template).init()
        return name

    def drop(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="pgmlops-test-", dir=os.environ.get("PGMLOPS_TEST_TMP", "/tmp")))
    base.chmod(0o755)
    server = LocalServer(base / "cluster", settings=(("fsync", "off"), ("synchronous_commit", "off"),
                                                     ("full_page_writes", "off"), ("max_connections", "200")))
    server.start()
    try:
        yield Cluster(server)
    finally:
        server.destroy()
        base.rmdir() if base.exists() and not any(base.iterdir()) else None


@pytest.fixture(scope="module")
def dsn(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database for this module, pgmlops + pgmlops_python installed as extensions."""
    name = cluster.new_database(request.module.__name__.rsplit(".", 1)[-1])
    yield cluster.url(name)
    cluster.drop(name)


@pytest.fixture(scope="module")
def database_factory(cluster: Cluster) -> Iterator[Callable[..., str]]:
    """Make more databases in a chosen install mode (or empty with mode=None); dropped after the module."""
    made: list[str] = []

    def make(mode: str | None = "extension", python: bool = True, prefix: str = "db") -> str:
        name = cluster.new_database(prefix, mode, python)
        made.append(name)
        return cluster.url(name)

    yield make
    for name in made:
        cluster.drop(name)


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection (tuple rows) to the module's database."""
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


@pytest.fixture
def client(dsn: str) -> Iterator[pgmlops.Client]:
    with pgmlops.connect(dsn) as c:
        yield c
