"""pgmlops.sqlalchemy matches the installed catalog, works in a session, and a user's own
alembic project can depend on pgmlops' revisions (version_locations) or call install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgmlops import sqlalchemy as pm
from pgmlops.alembic_support import migrations_dir, sqlalchemy_url
from sqlalchemy import Table, create_engine, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from .conftest import ROOT

CORE = {"mlops.alerts", "mlops.models", "mlops.model_versions", "mlops.model_aliases", "mlops.alert_log"}
DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def catalog_columns(conn: psycopg.Connection[Any], qualified: str) -> dict[str, tuple[str, bool]] | None:
    if conn.execute("select pg_catalog.to_regclass(%s::text)", (qualified,)).fetchone() == (None,):
        return None
    rows = conn.execute("""
        select a.attname, pg_catalog.format_type(a.atttypid, null), not a.attnotnull
          from pg_catalog.pg_attribute a
         where a.attrelid = pg_catalog.to_regclass(%s::text) and a.attnum > 0 and not a.attisdropped""",
                        (qualified,)).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def mapped_columns(table: Table) -> dict[str, tuple[str, bool]]:
    return {c.name: (c.type.compile(dialect=DIALECT).lower(), bool(c.nullable)) for c in table.columns}


@pytest.mark.parametrize("qualified", sorted(pm.metadata.tables))
def test_mapping_matches_catalog(conn: psycopg.Connection[Any], qualified: str) -> None:
    actual = catalog_columns(conn, qualified)
    assert actual is not None, f"{qualified} is mapped but not installed"
    table = pm.metadata.tables[qualified]
    mapped = mapped_columns(table)
    is_view = bool(table.info.get("is_view"))
    if is_view:  # views report every column nullable; compare names and types only
        mapped = {k: (v[0], True) for k, v in mapped.items()}
    assert mapped == actual, f"pgmlops.sqlalchemy mapping of {qualified} differs from the catalog"


def test_mapping_comparison_detects_drift(conn: psycopg.Connection[Any]) -> None:
    """The comparison can fail: a column added to a mapped table shows up as a difference."""
    with conn.transaction(force_rollback=True):
        conn.execute("alter table mlops.alerts add column extra text")
        actual = catalog_columns(conn, "mlops.alerts")
    assert actual is not None and mapped_columns(pm.Alert.__table__) != actual  # type: ignore[arg-type]


def test_session_queries_and_relationships(dsn: str, conn: psycopg.Connection[Any]) -> None:
    conn.execute("insert into mlops.models (name, task) values ('sa_churn', 'classification')")
    conn.execute("""insert into mlops.model_versions (model_id, version, flavor, artifact, artifact_sha256, metrics)
                    select id, 1, 'custom', '\\x00', repeat('a', 64), '{"auc": 0.81}' from mlops.models
                     where name = 'sa_churn'""")
    conn.execute("select mlops._raise_alert('drift', 'sa_monitor', 'critical', 'shift', '{\"share\": 0.5}')")
    engine = create_engine(sqlalchemy_url(dsn))
    try:
        with Session(engine) as session:
            model = session.scalars(select(pm.Model).where(pm.Model.name == "sa_churn")).one()
            assert model.task == "classification"
            assert [(v.version, v.metrics["auc"]) for v in model.versions] == [(1, 0.81)]
            alert = session.scalars(select(pm.Alert).where(pm.Alert.subject == "sa_monitor")).one()
            assert alert.details == {"share": 0.5} and alert.created_at.tzinfo is not None
            open_alerts = session.scalar(select(func.count()).select_from(pm.AlertLog)
                                         .where(pm.AlertLog.subject == "sa_monitor", pm.AlertLog.is_open))
            assert open_alerts == 1
    finally:
        engine.dispose()


def test_vector_columns_use_pgvector_type() -> None:
    from pgvector.sqlalchemy import Vector

    assert isinstance(pm.EmbeddingCache.__table__.c.embedding.type, Vector)
    assert isinstance(pm.Prediction.__table__.c.feature_vector.type, Vector)


def test_views_and_tables_listed() -> None:
    assert "mlops.alert_log" in pm.views() and "mlops.alert_log" not in pm.tables()
    assert {"mlops.alerts", "mlops.models", "mlops.model_versions", "mlops.model_aliases"} <= set(pm.tables())


USER_ENV = '''
from alembic import context
from sqlalchemy import create_engine, pool

url = context.get_x_argument(as_dictionary=True)["dsn"]
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
'''

USER_REVISION = '''
"""user app: scores table referencing pgmlops' models."""
import sqlalchemy as sa
from alembic import op

revision = "app_0001"
down_revision = None
branch_labels = ("app",)
depends_on = {depends_on!r}


def upgrade() -> None:
    {before}
    op.create_table("scores", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("model_id", sa.BigInteger, sa.ForeignKey("mlops.models.id"), nullable=False))
'''


def user_project(tmp: Path, depends_on: str | None, before: str, with_pgmlops: bool) -> Path:
    (tmp / "versions").mkdir(parents=True)
    (tmp / "env.py").write_text(USER_ENV)
    (tmp / "script.py.mako").write_text((ROOT / "migrations" / "script.py.mako").read_text())
    (tmp / "versions" / "app_0001.py").write_text(
        textwrap.dedent(USER_REVISION).format(depends_on=depends_on, before=before or "pass"))
    locations = f"{tmp / 'versions'}" + (f" {migrations_dir()}" if with_pgmlops else "")
    (tmp / "alembic.ini").write_text(f"[alembic]\nscript_location = {tmp}\nversion_locations = {locations}\n"
                                     "version_path_separator = space\n")
    return tmp / "alembic.ini"


def run_alembic(ini: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "alembic", "-c", str(ini), "-x", f"dsn={sqlalchemy_url(dsn)}",
                           *args], capture_output=True, text=True, check=False, cwd=ini.parent)


def test_user_alembic_depends_on_pgmlops_revisions(tmp_path: Path,
                                                   database_factory: Callable[..., str]) -> None:
    dsn = database_factory(None, prefix="sa_alembic_dep")
    ini = user_project(tmp_path / "app", "pgmlops_0_2_0", "", with_pgmlops=True)
    proc = run_alembic(ini, dsn, "upgrade", "heads")
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(dsn) as c:
        assert c.execute("select mlops.version()").fetchone() == ("0.2.0",)
        assert c.execute("select pg_catalog.to_regclass('public.scores') is not null").fetchone() == (True,)
        heads = {r[0] for r in c.execute("select version_num from public.alembic_version").fetchall()}
    assert heads == {"app_0001"}  # depends_on makes pgmlops_0_2_0 an ancestor of the app head


def test_user_alembic_without_pgmlops_revisions_fails_before_writing(tmp_path: Path,
                                                              database_factory: Callable[..., str]) -> None:
    """Depending on pgmlops without listing its versions folder is an alembic error, nothing written."""
    dsn = database_factory(None, prefix="sa_alembic_missing")
    ini = user_project(tmp_path / "app", "pgmlops_0_2_0", "", with_pgmlops=False)
    proc = run_alembic(ini, dsn, "upgrade", "heads")
    assert proc.returncode != 0 and "'pgmlops_0_2_0'" in proc.stderr, proc.stderr
    with psycopg.connect(dsn) as c:
        assert c.execute("select pg_catalog.to_regnamespace('mlops') is null").fetchone() == (True,)


def test_user_alembic_calls_install(tmp_path: Path, database_factory: Callable[..., str]) -> None:
    dsn = database_factory(None, prefix="sa_alembic_install")
    before = "from pgmlops.alembic_support import install_version; install_version('0.2.0')"
    ini = user_project(tmp_path / "app", None, before, with_pgmlops=False)
    proc = run_alembic(ini, dsn, "upgrade", "heads")
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(dsn) as c:
        assert c.execute("select mlops.version()").fetchone() == ("0.2.0",)
        assert c.execute("select pg_catalog.to_regclass('public.scores') is not null").fetchone() == (True,)


def test_wheel_ships_revisions_and_sql_bundle(tmp_path: Path) -> None:
    """A user without a checkout gets migrations_dir()'s revisions and the SQL bundle from the
    wheel (built offline from this tree, the way pip would build it)."""
    import shutil
    import zipfile

    src = tmp_path / "src"  # a copy: no build/ left from an earlier build can fill the wheel
    src.mkdir()
    for part in ("pyproject.toml", "README.md", "pyclient", "migrations"):
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, src / part, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / part, src / part)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(src)], check=True, cwd=tmp_path, capture_output=True)
    (wheel,) = tmp_path.glob("pgmlops-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    revisions = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    assert revisions and migrations_dir() == ROOT / "migrations" / "versions"
    assert {f"pgmlops/alembic_revisions/{r}" for r in revisions} <= names
    bundle = sorted(p.name for p in (ROOT / "pyclient" / "pgmlops" / "sql").glob("*.sql"))
    assert bundle and {f"pgmlops/sql/{b}" for b in bundle} <= names
