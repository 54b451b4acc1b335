"""Script lint: pgspot over every generated extension script (fresh and upgrade copies).

Findings must be 0 except entries of pgspot_allow.tsv, each with a reason.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import ROOT

PGSPOT = Path(sys.executable).parent / "pgspot"
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
    proc = subprocess.run([str(PGSPOT), "--ignore-lang", "plpython3u", str(script)],
                          capture_output=True, text=True, check=False)
    out = [(m.group(1), m.group(2)) for line in proc.stdout.splitlines() if (m := FINDING.match(line.strip()))]
    summary = re.search(r"Errors: (\d+) Warnings: (\d+) Unknown: (\d+)", proc.stdout)
    assert summary, proc.stdout + proc.stderr
    # pgspot stops at a statement it cannot parse (pglast): everything after it is unchecked.
    other = [line for line in proc.stdout.splitlines()
             if line.strip() and not FINDING.match(line.strip()) and not line.strip().startswith("Errors:")]
    assert other == [], f"pgspot could not analyze all of {script.name}: {other}"
    assert sum(int(x) for x in summary.groups()[:2]) == len(out), proc.stdout
    return out


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
