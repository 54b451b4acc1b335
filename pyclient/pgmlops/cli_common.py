"""What every ``pgmlops`` sub-command shares: --dsn / --json options, consoles, and turning
expected errors into one red line with exit code 1."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from .errors import PgmlopsError

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

DsnOption = Annotated[str | None, typer.Option("--dsn", help="Database URL (default: PGMLOPS_DSN, DATABASE_URL, "
                                                              "then the local cluster).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
F = TypeVar("F", bound=Callable[..., Any])


def fails_cleanly(fn: F) -> F:
    """Turn expected errors into one red line and exit code 1 (no traceback)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import psycopg

        try:
            return fn(*args, **kwargs)
        except (PgmlopsError, psycopg.Error) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            err_console.print(f"[red]error:[/red] {message}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def print_mapping(title: str, data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
        return
    table = Table(title=title, show_header=False)
    for k, v in data.items():
        table.add_row(str(k), str(v))
    console.print(table)


def report_done(message: str, data: dict[str, Any], as_json: bool) -> None:
    """The closing line of a command: a sentence for people, or one JSON object for scripts."""
    if as_json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
    else:
        console.print(message)
