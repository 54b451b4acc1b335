"""Script lint: pgspot over every generated extension script (fresh and upgrade copies).

Findings must be 0 except entries of pgspot_allow.tsv, each with a reason.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import ROOT

ALLOW = Path(__file__).with_name("pgspot_allow.tsv")
FINDING = re.compile(r"^(PS\d{3}): (.*) at line \d+$")
SCRIPTS = sorted((ROOT / "extension").glob("*.sql"))


@dataclass(frozen=True)
class Allowed:
    files: str
    code: str
    pattern: re.Pattern[str]
    reason: str


def allow_list() -> list[Allowed]:
    entries = []
    for n, line in enumerate(ALLOW.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        assert len(parts) == 4 and len(parts[3].strip()) >= 20, f"{ALLOW.name}:{n}: need files, code, regex, reason"
        entries.append(Allowed(parts[0], parts[1], re.compile(parts[2]), parts[3]))
    return entries


def findings(script: Path) -> list[tuple[str, str]]:
    return _findings(script.read_text())  # upgrade copies equal their target script: analyzed once


@functools.cache
def _findings(source: str) -> list[tuple[str, str]]:
    """pgspot's findings, statement by statement: pgspot stops a whole file at the first statement
    it cannot analyze (pglast parse/deparse limits), so each one is run on its own (sharing the
    search_path state) and a statement it cannot analyze is a finding of its own, PSFATAL."""
    import argparse
    import contextlib
    import io

    from pglast import ast, parse_sql
    from pgspot.state import Counter, State  # type: ignore[import-untyped]
    from pgspot.visitors import SQLVisitor  # type: ignore[import-untyped]

    args = argparse.Namespace(ignore=[], ignore_lang=["plpython3u"], proc_without_search_path=[], plpgsql=True,
                              sql_fn=[], summary_only=False, append=False, files=[], explain=None)
    text = re.sub(r"^\\", "-- \\\\", source, flags=re.MULTILINE)
    # head.sql ends with set_config('search_path', 'pg_catalog, <vector schema>, pg_temp'), which pgspot
    # cannot evaluate: tell it, assuming the vector schema is trusted (test_hostile covers a writable one).
    text = text.replace("\n$head$;\n", "\n$head$;\nset local search_path = pg_catalog, pg_temp;\n", 1)
    counter = Counter(args)
    state = State(counter)
    counter.sql = text
    visitor = SQLVisitor(state)
    out = io.StringIO()
    fatal: list[tuple[str, str]] = []
    with contextlib.redirect_stdout(out):
        for stmt in parse_sql(text):
            counter.stmt_location = stmt.stmt_location
            try:
                visitor(stmt)
            except Exception as exc:
                node = stmt.stmt
                what = ".".join(s.sval for s in node.funcname) if isinstance(node, ast.CreateFunctionStmt) \
                    else type(node).__name__
                fatal.append(("PSFATAL", f"cannot analyze {what}: {exc}"))
    found = [(m.group(1), m.group(2)) for line in out.getvalue().splitlines() if (m := FINDING.match(line.strip()))]
    other = [line for line in out.getvalue().splitlines() if line.strip() and not FINDING.match(line.strip())]
    assert counter.errors + counter.warnings == len(found), out.getvalue()
    return found + fatal + [("PSUNKNOWN", line.strip()) for line in other]


def unexplained(script: Path, entries: list[Allowed]) -> list[str]:
    return [f"{code}: {msg}" for code, msg in findings(script)
            if not any(fnmatch.fnmatch(script.name, a.files) and a.code == code and a.pattern.search(msg)
                       for a in entries)]


def test_every_script_is_linted() -> None:
    names = {p.name for p in SCRIPTS}
    assert any(n.startswith("pgmlops--") and "--" in n[len("pgmlops--"):] for n in names), "no upgrade script"
    assert {"pgmlops--0.1.0.sql", "pgmlops_python--0.1.0.sql"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_pgspot_clean(script: Path) -> None:
    assert unexplained(script, allow_list()) == []


def test_pgspot_catches_an_unsafe_script(tmp_path: Path) -> None:
    """The lint can fail: an unpinned function and a hostile-adoptable object are reported."""
    bad = tmp_path / "bad.sql"
    bad.write_text("create function public.f(a text) returns text language sql as $$ select lower(a) $$;\n"
                   "create table if not exists public.t (a int);\n")
    got = unexplained(bad, allow_list())
    codes = {g.split(":")[0] for g in got}
    assert {"PS005", "PS012"} <= codes, got


def test_every_allow_entry_is_used() -> None:
    entries = allow_list()
    used = {e for s in SCRIPTS for code, msg in findings(s) for e in entries
            if fnmatch.fnmatch(s.name, e.files) and e.code == code and e.pattern.search(msg)}
    assert [e.code + " " + e.pattern.pattern for e in entries if e not in used] == []
