"""Run every benchmark module (bench/bench_*.py) and print one summary table.

    .venv/bin/python -m bench            all, full sizes
    .venv/bin/python -m bench --quick    all, reduced sizes
    .venv/bin/python -m bench features   only bench_features
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help="domains to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="reduced sizes")
    parser.add_argument("--json", type=Path, help="also write all rows to this JSON file")
    args = parser.parse_args()
    console = Console()
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    if args.only:
        names = [n for n in names if n.removeprefix("bench_") in args.only]
    rows: list[dict[str, Any]] = []
    for name in names:
        console.rule(name)
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        got = module.main(quick=args.quick)
        rows.extend({"bench": name, **r} for r in got)
        console.print(f"{name}: {time.perf_counter() - started:.1f} s")
    table = Table(title="pgmlops benchmarks (medians)")
    for col in ("bench", "case", "ours", "baseline", "ratio", "unit"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r.get(c, "")) for c in ("bench", "case", "ours", "baseline", "ratio", "unit")))
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
