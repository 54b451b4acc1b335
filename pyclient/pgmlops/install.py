"""Install or upgrade pgmlops from the SQL bundled in this package (bundled mode).

Works without file access to the server and without plpython3u: the same generated
script that CREATE EXTENSION runs is sent over the connection, in one transaction, so a
failure leaves nothing half-installed.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from .errors import InstallError

CORE = "pgmlops"
PYTHON = "pgmlops_python"
_SCRIPT_RE = re.compile(r"^(pgmlops|pgmlops_python)--(\d+\.\d+\.\d+)\.sql$")


def _vkey(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def available_versions(ext: str = CORE) -> list[str]:
    """Versions whose scripts are bundled, oldest first."""
    names = [p.name for p in resources.files("pgmlops.sql").iterdir()]
    found = [m.group(2) for n in names if (m := _SCRIPT_RE.match(n)) and m.group(1) == ext]
    return sorted(found, key=_vkey)


def latest_version() -> str:
    return available_versions()[-1]


def bundled_script(ext: str = CORE, version: str | None = None) -> str:
    version = version or latest_version()
    if version not in available_versions(ext):
        raise InstallError(f"unknown version {version!r}; bundled: {', '.join(available_versions(ext))}")
    return resources.files("pgmlops.sql").joinpath(f"{ext}--{version}.sql").read_text()


def _scalar(conn: psycopg.Connection[Any], query: str) -> Any:
    """First column of the first row (or None), whatever row factory the connection uses."""
    row = conn.cursor(row_factory=tuple_row).execute(query).fetchone()
    return None if row is None else row[0]


def installed_version(conn: psycopg.Connection[Any]) -> str | None:
    """Version installed in this database (either mode), or None."""
    if not _scalar(conn, "select pg_catalog.to_regprocedure('mlops.version()') is not null"):
        return None
    got = _scalar(conn, "select mlops.version()")
    return None if got is None else str(got)


def _check_server(conn: psycopg.Connection[Any], python: bool) -> None:
    if _scalar(conn, "select 1 from pg_catalog.pg_extension where extname = 'pgmlops'"):
        raise InstallError("pgmlops is already installed here as an extension (CREATE EXTENSION); "
                           "upgrade it with ALTER EXTENSION pgmlops UPDATE")
    if not _scalar(conn, "select 1 from pg_catalog.pg_available_extensions where name = 'vector'") \
            and not _scalar(conn, "select 1 from pg_catalog.pg_extension where extname = 'vector'"):
        raise InstallError("the server has no pgvector extension (vector); install pgvector >= 0.8 first")
    if python and not _scalar(conn, "select 1 from pg_catalog.pg_available_extensions where name = 'plpython3u'"):
        raise InstallError("python=True but the server has no plpython3u")


def install(conn: psycopg.Connection[Any] | str, version: str | None = None,
            python: bool | None = None) -> str:
    """Install or upgrade pgmlops (and pgmlops_python when ``python``) in one transaction.

    ``python=None`` installs the companion when plpython3u is available. Returns the
    installed version.
    """
    if isinstance(conn, str):
        try:
            with psycopg.connect(conn, autocommit=True, connect_timeout=10) as c:
                return install(c, version, python)
        except psycopg.OperationalError as exc:
            raise InstallError(f"cannot connect: {str(exc).strip().splitlines()[0]}") from None
    version = version or latest_version()
    _check_server(conn, bool(python))
    if python is None:
        python = bool(_scalar(conn, "select 1 from pg_catalog.pg_available_extensions where name = 'plpython3u'"))
    current = installed_version(conn)
    if current is not None and _vkey(current) > _vkey(version):
        raise InstallError(f"database has pgmlops {current}, newer than {version}; downgrades are not supported")
    try:
        with conn.transaction():
            conn.execute("create extension if not exists vector")
            conn.execute("select pg_catalog.set_config('pgmlops.install_mode', 'bundled', true)")
            conn.execute(bundled_script(CORE, version).encode())
            if python:
                conn.execute("create extension if not exists plpython3u")
                conn.execute(bundled_script(PYTHON, version).encode())
    except psycopg.Error as exc:
        diag = exc.diag
        raise InstallError(f"install failed, nothing changed: {diag.message_primary or exc}"
                           + (f" ({diag.message_hint})" if diag.message_hint else "")) from None
    return version
