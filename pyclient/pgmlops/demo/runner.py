"""Runs the demo steps with a rich progress display and prints the closing summary."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..client import Client
from . import run

STEPS: tuple[tuple[str, Callable[..., str]], ...] = (
    ("install", run.prepare),
    ("feature store", run.features),
    ("training set", run.training_set),
    ("training jobs", run.train_models),
    ("promotion", run.promote),
    ("A/B experiment", run.experiment),
    ("feedback", run.feedback),
    ("drift monitor", run.drift),
    ("embeddings", run.embeddings),
    ("conclude + promote", run.conclude),
    ("rollback", run.rollback),
    ("reports", run.reports),
)


def run_demo(dsn: str, reset: bool = False, customers: int = 50_000, out_dir: Path = Path("reports"),
             console: Console | None = None) -> dict[str, Any]:
    console = console or Console()
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, str, float]] = []
    started = time.perf_counter()
    with Client(dsn) as client:
        ctx = run.Context(client=client, out_dir=out_dir, customers=customers)
        with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("demo", total=len(STEPS))
            for name, step in STEPS:
                bar.update(task, description=name)
                t0 = time.perf_counter()
                outcome = run.prepare(ctx, reset) if step is run.prepare else step(ctx)
                results.append((name, outcome, time.perf_counter() - t0))
                bar.console.print(f"[green]✓[/green] {name}: {outcome}")
                bar.advance(task)
    total = time.perf_counter() - started
    table = Table(title=f"pgmlops demo — done in {total:.1f} s")
    table.add_column("step")
    table.add_column("result")
    table.add_column("s", justify="right")
    for name, outcome, seconds in results:
        table.add_row(name, outcome, f"{seconds:.1f}")
    console.print(table)
    for kind, path in ctx.reports.items():
        console.print(f"report {kind}: {path.resolve()}")
    return {"seconds": total, "steps": results, "reports": {k: str(v) for k, v in ctx.reports.items()},
            "facts": ctx.facts}
