"""docs/reference/ is generated from the installed catalog and must be current."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest

from .conftest import ROOT


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference_docs", ROOT / "scripts" / "gen_reference_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = generator()


@pytest.fixture(scope="module")
def pages(dsn: str) -> dict[str, str]:
    result: dict[str, str] = gen.generate(dsn)
    return result


def test_reference_docs_are_current(pages: dict[str, str]) -> None:
    stale = gen.stale(pages)
    assert not stale, (f"docs/reference/ is stale ({', '.join(stale)}): "
                       "run `.venv/bin/python scripts/gen_reference_docs.py`")


def test_every_public_function_and_view_is_documented(conn: psycopg.Connection[Any],
                                                      pages: dict[str, str]) -> None:
    text = "\n".join(pages.values())
    functions = conn.execute("""
        select p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')'
          from pg_catalog.pg_proc p where p.pronamespace = 'mlops'::regnamespace and p.proname !~ '^_'
           and p.prokind = 'f'""").fetchall()
    assert functions
    for (sig,) in functions:
        assert f"### mlops.{sig}\n" in text, f"mlops.{sig} missing from docs/reference"
    for (view,) in conn.execute("select relname from pg_catalog.pg_class where relnamespace = "
                                "'mlops'::regnamespace and relkind = 'v'").fetchall():
        assert f"### mlops.{view}\n" in text
    assert "### mlops._" not in text, "private helpers must not be documented"
    assert "| `time` | timestamp with time zone | When the alert was raised. |" in pages["core.md"]


def test_pages_follow_file_ranges(pages: dict[str, str]) -> None:
    owners = gen.file_owners()
    assert owners["version"] == "core" and owners["alert_log"] == "core"
    assert "### mlops.version()" in pages["core.md"]
    for name, slug in owners.items():
        if not name.startswith("_") and f"### mlops.{name}(" in "\n".join(pages.values()):
            assert f"### mlops.{name}" in pages[f"{slug}.md"], f"{name} not on {slug}.md"
    assert set(pages) == {"index.md", *(f"{s}.md" for s, *_ in gen.CAPABILITIES)}


def test_stale_detects_changed_comment(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    owners = gen.file_owners()
    before = gen.render(conn, owners)
    gen.write(before, tmp_path)
    assert gen.stale(before, tmp_path) == []
    with conn.transaction(force_rollback=True):
        conn.execute("comment on function mlops.version() is 'changed for the test'")
        after = gen.render(conn, owners)
    assert gen.stale(after, tmp_path) == ["core.md"]
    (tmp_path / "extra.md").write_text("x")
    assert "extra.md" in gen.stale(before, tmp_path)
