"""Alembic environment of pgmlops: each revision installs one released SQL script.

The URL comes from ``-x dsn=...``, the config's sqlalchemy.url, PGMLOPS_DSN or DATABASE_URL.
A user's own alembic project can list this folder's versions/ in ``version_locations``
(see docs/alembic.md) so its revisions depend on ours.
"""

from __future__ import annotations

import os

from alembic import context
from pgmlops.alembic_support import sqlalchemy_url
from sqlalchemy import create_engine, pool

config = context.config


def run_migrations_online() -> None:
    url = (context.get_x_argument(as_dictionary=True).get("dsn") or config.get_main_option("sqlalchemy.url")
           or os.environ.get("PGMLOPS_DSN") or os.environ.get("DATABASE_URL"))
    if not url:
        raise SystemExit("alembic: give -x dsn=postgresql://... or set PGMLOPS_DSN")
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("pgmlops migrations run online only (they execute the bundled SQL)")
run_migrations_online()
