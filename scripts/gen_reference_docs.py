"""Write docs/reference/ from the installed catalog: one page per capability listing every
public function (signature, result, comment, a named-notation call) and every view (columns,
types, comments). Objects are assigned to a capability by the sql/ file that defines them
(file number ranges, see docs/contributing.md).

    .venv/bin/python scripts/gen_reference_docs.py                 # own temporary cluster
    .venv/bin/python scripts/gen_reference_docs.py --dsn URL       # an installed database
    .venv/bin/python scripts/gen_reference_docs.py --check         # exit 1 when docs/reference/ is stale
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "reference"
CAPABILITIES = [  # (slug, title, first file number, last file number)
    ("core", "Core", 0, 99),
    ("feature-store", "Feature store", 100, 199),
    ("registry", "Model registry", 200, 299),
    ("predictions", "Predictions", 300, 399),
    ("experiments", "Experiments", 400, 499),
    ("drift", "Drift", 500, 599),
    ("embeddings", "Embeddings", 600, 699),
]
DEFINITION = re.compile(r"create\s+(?:or\s+replace\s+)?(function|aggregate|view|materialized\s+view)\s+mlops\.(\w+)",
                        re.I)

FUNCTIONS = """
    select p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid),
           pg_catalog.pg_get_function_arguments(p.oid), pg_catalog.pg_get_function_result(p.oid),
           coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), ''), p.proargnames, p.proargmodes,
           p.pronargs, p.provolatile, l.lanname, p.prokind
      from pg_catalog.pg_proc p join pg_catalog.pg_language l on l.oid = p.prolang
     where p.pronamespace = 'mlops'::regnamespace and p.proname !~ '^_' and p.prokind in ('f', 'a')
     order by 1, 2"""
VIEWS = """
    select c.relname, coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '')
      from pg_catalog.pg_class c
     where c.relnamespace = 'mlops'::regnamespace and c.relkind in ('v', 'm') and c.relname !~ '^_'
     order by 1"""
COLUMNS = """
    select a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), coalesce(pg_catalog.col_description(a.attrelid,
           a.attnum), '')
      from pg_catalog.pg_attribute a
     where a.attrelid = pg_catalog.to_regclass(%s::text) and a.attnum > 0 and not a.attisdropped order by a.attnum"""


def file_owners(sql_dir: Path = ROOT / "sql") -> dict[str, str]:
    """Object name -> capability slug, from the number of the sql/ file that defines it."""
    owners: dict[str, str] = {}
    for path in sorted(sql_dir.glob("*/[0-9][0-9][0-9]-*.sql")):
        number = int(path.name[:3])
        slug = next((s for s, _, lo, hi in CAPABILITIES if lo <= number <= hi), None)
        if slug is None:
            continue
        for _, name in DEFINITION.findall(path.read_text()):
            owners.setdefault(name, slug)
    return owners


def readme_examples(readme: Path = ROOT / "README.md") -> dict[str, str]:
    """Function name -> first statement of the README's ```sql blocks that calls it (tested by
    tests/test_readme.py), so the reference shows real, working calls."""
    if not readme.exists():
        return {}
    examples: dict[str, str] = {}
    for block in re.findall(r"^```sql\n(.*?)^```", readme.read_text(), re.S | re.M):
        for statement in block.split(";"):
            lines = [ln for ln in statement.strip().splitlines() if ln.strip() and not ln.lstrip().startswith("--")]
            if not lines or lines[0].lstrip().startswith("\\"):
                continue
            text = "\n".join(lines).strip() + ";"
            for name in re.findall(r"mlops\.(\w+)\s*\(", text):
                examples.setdefault(name, text)
    return examples


def md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def example(name: str, argnames: list[str] | None, modes: list[str] | None, nargs: int, result: str,
            aggregate: bool = False) -> str:
    names = [n for i, n in enumerate(argnames or []) if not modes or modes[i] in ("i", "b", "v")][:nargs]
    if aggregate:  # aggregates take no named notation
        return f"select mlops.{name}({', '.join(names)}) from ...;"
    args = ", ".join(f"{n} => ..." for n in names if n)
    call = f"mlops.{name}({args})"
    return f"select * from {call};" if result.startswith(("TABLE", "SETOF")) else f"select {call};"


def render(conn: psycopg.Connection[Any], owners: dict[str, str],
           examples: dict[str, str] | None = None) -> dict[str, str]:
    """File name -> Markdown content of every page."""
    examples = readme_examples() if examples is None else examples
    functions = conn.execute(FUNCTIONS).fetchall()
    views = conn.execute(VIEWS).fetchall()
    version = conn.execute("select mlops.version()").fetchone()
    pages: dict[str, list[str]] = {}
    titles = {slug: title for slug, title, _, _ in CAPABILITIES}
    for slug, title, lo, hi in CAPABILITIES:
        pages[slug] = [f"# {title} reference", "",
                       f"Generated by `scripts/gen_reference_docs.py` from the catalog of pgmlops "
                       f"{version[0] if version else '?'} (objects defined in sql/ files {lo:03d}-{hi:03d}). "
                       "Do not edit by hand.", ""]
    fn_parts: dict[str, list[str]] = {s: [] for s in pages}
    for name, ident, args, result, comment, argnames, modes, nargs, volatility, lang, kind in functions:
        slug = owners.get(name, "core")
        vol = {"i": "immutable", "s": "stable", "v": "volatile"}[volatility]
        fn_parts[slug] += [f"### mlops.{name}({ident})", "", "```sql",
                           f"mlops.{name}({args})", f"  returns {result}", "```", "",
                           comment or "*(no comment)*", "",
                           ("aggregate" if kind == "a" else f"{vol}, language {lang}") + ". Example"
                           + (" (from the README's SQL tour)" if name in examples else "") + ":", "", "```sql",
                           examples.get(name) or example(name, argnames, modes, nargs, result, kind == "a"),
                           "```", ""]
    view_parts: dict[str, list[str]] = {s: [] for s in pages}
    for name, comment in views:
        slug = owners.get(name, "core")
        cols = conn.execute(COLUMNS, (f"mlops.{name}",)).fetchall()
        view_parts[slug] += [f"### mlops.{name}", "", comment or "*(no comment)*", "",
                             "| column | type | description |", "|---|---|---|",
                             *[f"| `{c}` | {t} | {md(d)} |" for c, t, d in cols], ""]
    out: dict[str, str] = {}
    index = ["# pgmlops SQL reference", "", "Generated from the installed catalog by `scripts/gen_reference_docs.py`.",
             "", "| capability | functions | views |", "|---|---|---|"]
    for slug, lines in pages.items():
        n_fn = sum(1 for line in fn_parts[slug] if line.startswith("### "))
        n_view = sum(1 for line in view_parts[slug] if line.startswith("### "))
        lines += ["## Functions", "", *(fn_parts[slug] or ["None yet.", ""]),
                  "## Views", "", *(view_parts[slug] or ["None yet.", ""])]
        out[f"{slug}.md"] = "\n".join(lines).rstrip() + "\n"
        index.append(f"| [{titles[slug]}]({slug}.md) | {n_fn} | {n_view} |")
    out["index.md"] = "\n".join(index) + "\n"
    return out


@contextmanager
def temporary_database() -> Iterator[str]:
    """A private cluster with both extensions installed from the server's extension directory."""
    sys.path.insert(0, str(ROOT / "pyclient"))
    from pgmlops.server import LocalServer

    base = Path(tempfile.mkdtemp(prefix="pgmlops-refdocs-"))
    base.chmod(0o755)
    server = LocalServer(base / "cluster", settings=(("fsync", "off"),))
    server.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("create extension if not exists pgmlops cascade")
            conn.execute("create extension if not exists pgmlops_python cascade")
        yield server.url()
    finally:
        server.destroy()


def generate(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return render(conn, file_owners())


def stale(pages: dict[str, str], out: Path = OUT) -> list[str]:
    """Pages that differ from (or are missing in / extra in) ``out``."""
    have = {p.name: p.read_text() for p in out.glob("*.md")} if out.exists() else {}
    return sorted(n for n in set(pages) | set(have) if pages.get(n) != have.get(n))


def write(pages: dict[str, str], out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.md"):
        if old.name not in pages:
            old.unlink()
    for name, text in pages.items():
        (out / name).write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", help="database with pgmlops installed (default: a temporary local cluster)")
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/reference/ is stale")
    args = parser.parse_args(argv)
    if args.dsn:
        pages = generate(args.dsn)
    else:
        with temporary_database() as dsn:
            pages = generate(dsn)
    if args.check:
        diff = stale(pages)
        if diff:
            print("docs/reference/ is stale: " + ", ".join(diff) + " (run scripts/gen_reference_docs.py)",
                  file=sys.stderr)
            return 1
        return 0
    write(pages)
    print(f"wrote {len(pages)} pages to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
