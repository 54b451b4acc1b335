"""The README's SQL tour and Python tour work: every ```sql block under the heading "SQL tour"
runs in one psql session (ON_ERROR_STOP) on a fresh database, every ```python block under
"Python tour" runs in one namespace with PGMLOPS_DSN pointing at that database.
The Python tour continues in the SQL tour's database (it builds on its objects).
A failure names the block (number and first line).

Before the README has a tour the tests skip; once a committed README has had the heading,
losing it is a failure."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import ROOT

README = ROOT / "README.md"
PSQL = "/usr/lib/postgresql/15/bin/psql"
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")


def section_blocks(text: str, title: str, language: str) -> list[str] | None:
    """Fenced blocks of ``language`` under the heading containing ``title`` (up to the next heading
    of the same or a higher level); None when there is no such heading."""
    lines = text.splitlines()
    level, blocks = 0, []
    current: list[str] | None = None
    fence_lang: str | None = None
    for line in lines:
        if fence_lang is None:
            h = HEADING.match(line)
            if h:
                if level and len(h.group(1)) <= level:
                    break
                if not level and title.lower() in h.group(2).lower():
                    level = len(h.group(1))
                continue
            f = FENCE.match(line)
            if f:
                fence_lang = f.group(1).lower()
                current = [] if level and fence_lang == language else None
        elif line.strip() == "```":
            if current is not None:
                blocks.append("\n".join(current))
            fence_lang, current = None, None
        elif current is not None:
            current.append(line)
    return blocks if level else None


def tour(title: str, language: str) -> list[str]:
    blocks = section_blocks(README.read_text(), title, language)
    if blocks is None:
        pytest.fail(f"README.md has no {title!r} heading")
    if not blocks:
        pytest.fail(f"README.md section {title!r} has no ```{language} blocks")
    return blocks


def test_section_parser() -> None:
    text = ("# T\n## SQL tour\ntext\n```sql\nselect 1;\n```\n```python\nx = 1\n```\n### sub\n```sql\n"
            "select 2;\n```\n## Python tour\n```sql\nselect 3;\n```\n```python\nprint(1)\n```\n")
    assert section_blocks(text, "SQL tour", "sql") == ["select 1;", "select 2;"]
    assert section_blocks(text, "Python tour", "python") == ["print(1)"]
    assert section_blocks(text, "Missing", "sql") is None
    assert section_blocks("## SQL tour\n```\n# not a heading\n```\n```sql\nselect 1;\n```\n", "SQL tour",
                          "sql") == ["select 1;"]


def run_sql_blocks(dsn: str, blocks: list[str]) -> tuple[int, str, str]:
    script = "".join(f"\\echo @@block {i}@@\n{b}\n" for i, b in enumerate(blocks, 1))
    proc = subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn], input=script, capture_output=True,
                          text=True, check=False, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def failed_block(stdout: str) -> int:
    marks = re.findall(r"@@block (\d+)@@", stdout)
    return int(marks[-1]) if marks else 0


def test_sql_runner_names_failing_block(database_factory: Callable[..., str]) -> None:
    dsn = database_factory("extension", prefix="readme_neg")
    code, out, err = run_sql_blocks(dsn, ["select mlops.version();", "select mlops.no_such_function();",
                                          "select 1;"])
    assert code != 0 and failed_block(out) == 2 and "no_such_function" in err


@pytest.fixture(scope="module")
def tour_db(database_factory: Callable[..., str]) -> dict[str, object]:
    """One database for both tours: the Python tour continues where the SQL tour stopped."""
    return {"dsn": database_factory("extension", prefix="readme_tour"), "sql_done": False}


def run_sql_tour(tour_db: dict[str, object]) -> None:
    if tour_db["sql_done"]:
        return
    blocks = tour("SQL tour", "sql")
    code, out, err = run_sql_blocks(str(tour_db["dsn"]), blocks)
    if code != 0:
        n = failed_block(out)
        first = blocks[n - 1].strip().splitlines()[0] if n else "?"
        pytest.fail(f"README SQL tour block {n} ({first!r}) failed:\n{err[-2000:]}")
    tour_db["sql_done"] = True


def test_sql_tour(tour_db: dict[str, object]) -> None:
    run_sql_tour(tour_db)


def test_python_tour(tour_db: dict[str, object], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocks = tour("Python tour", "python")
    run_sql_tour(tour_db)  # the Python tour builds on the SQL tour's objects
    monkeypatch.setenv("PGMLOPS_DSN", str(tour_db["dsn"]))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for i, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"README.md Python tour block {i}", "exec"), namespace)
        except Exception as exc:
            first = block.strip().splitlines()[0] if block.strip() else ""
            pytest.fail(f"README Python tour block {i} ({first!r}) raised {type(exc).__name__}: {exc}")
