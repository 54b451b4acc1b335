"""Glue between alembic revisions and the bundled install scripts.

Every revision in migrations/versions calls ``install_version`` with the release it
pins, so ``alembic upgrade head`` runs exactly the scripts CREATE EXTENSION runs.
"""

from __future__ import annotations

from pathlib import Path

from .install import install


def sqlalchemy_url(dsn: str) -> str:
    """A SQLAlchemy URL using psycopg 3 for a libpq-style postgresql:// DSN."""
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix):]
    return dsn


def migrations_dir() -> Path:
    """The folder of pgmlops' alembic revisions (for a user's version_locations): inside the
    installed package, or migrations/versions of a source checkout (the package's link to it)."""
    return (Path(__file__).resolve().parent / "alembic_revisions").resolve()


def install_version(version: str) -> None:
    """Run the bundled script of ``version`` on alembic's current connection."""
    from alembic import op

    dbapi = op.get_bind().connection.driver_connection
    # The script pins search_path with SET LOCAL; restore the caller's so alembic's own
    # statements (UPDATE alembic_version) still find their table in this transaction.
    saved = dbapi.execute("select pg_catalog.current_setting('search_path')").fetchone()[0]  # type: ignore[union-attr]
    install(dbapi, version=version)  # type: ignore[arg-type]
    dbapi.execute("select pg_catalog.set_config('search_path', %s::text, true)", (saved,))  # type: ignore[union-attr]
