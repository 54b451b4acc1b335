"""What every benchmark shares: a throw-away local cluster, the results table, the CLI."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pgmlops.server import LocalServer
from rich.console import Console
from rich.table import Table

COLUMNS = ("case", "ours", "baseline", "ratio", "unit")
FAST_SETTINGS = (("fsync", "off"), ("synchronous_commit", "off"), ("full_page_writes", "off"))


@contextmanager
def bench_server(name: str, settings: tuple[tuple[str, str], ...] = FAST_SETTINGS) -> Iterator[LocalServer]:
    """A private cluster (run as the unprivileged user when root), destroyed afterwards."""
    base = Path(tempfile.mkdtemp(prefix=f"pgmlops-bench-{name}-"))
    base.chmod(0o755)
    server = LocalServer(base / "cluster", settings=settings)
    server.start()
    try:
        yield server
    finally:
        server.destroy()
        shutil.rmtree(base, ignore_errors=True)


def print_rows(title: str, rows: list[dict[str, Any]], console: Console | None = None) -> None:
    """Ours and the baseline side by side, one row per case."""
    table = Table(title=title)
    for col in COLUMNS:
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r.get(c, "")) for c in COLUMNS))
    (console or Console()).print(table)


def run_cli(main: Callable[..., list[dict[str, Any]]], doc: str | None) -> None:
    """``python -m bench.bench_x [--quick]``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="reduced sizes")
    main(quick=parser.parse_args().quick)
