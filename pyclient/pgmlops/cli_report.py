"""``pgmlops report ...`` (HTML reports) and ``pgmlops drift ...`` (run monitors) sub-commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from .cli_common import DsnOption, JsonOption, console, fails_cleanly, report_done

report_app = typer.Typer(help="Self-contained HTML reports.", no_args_is_help=True)
drift_app = typer.Typer(help="Drift monitors: run one, or every monitor that is due.", no_args_is_help=True)

HtmlOption = Annotated[Path | None, typer.Option("--html", help="Output HTML file (self-contained).")]
StaticOption = Annotated[Path | None, typer.Option("--static", help="Also (or only) write the plots as one PNG.")]


def _write(kind: str, key: str, name: str, html: Path | None, static: Path | None, as_json: bool,
           render: Callable[[], str]) -> None:
    """Render a report (``render`` returns its HTML) to ``--html`` and/or ``--static``, then report the paths."""
    from .errors import PgmlopsError
    from .report import static_png

    if html is None and static is None:
        raise PgmlopsError("give --html FILE and/or --static FILE.png")
    with static_png(static):
        text = render()
    if html is not None:
        html.write_text(text, encoding="utf-8")
    written = [str(p) for p in (html, static) if p is not None]
    out: dict[str, Any] = {"report": kind, key: name}
    if html is not None:
        out["html"] = str(html)
    if static is not None:
        out["png"] = str(static)
    report_done(f"{kind} report written to {', '.join(written)}", out, as_json)


@report_app.command("drift")
@fails_cleanly
def report_drift(monitor: Annotated[str, typer.Argument(help="Drift monitor name.")],
                 html: HtmlOption = None, static: StaticOption = None,
                 run: Annotated[int | None, typer.Option(help="Run id (default: the latest run).")] = None,
                 dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Write the drift report of a monitor's latest run.  Example: pgmlops report drift churn_inputs --html out.html
    --static out.png"""
    from .client import connect

    with connect(dsn) as client:
        _write("drift", "monitor", monitor, html, static, as_json, lambda: client.drift.report(monitor, run_id=run))


@drift_app.command("run")
@fails_cleanly
def drift_run(monitor: Annotated[str, typer.Argument(help="Drift monitor name.")], dsn: DsnOption = None,
              as_json: JsonOption = False) -> None:
    """Run a drift monitor now and print its results.  Example: pgmlops drift run churn_inputs"""
    from .client import connect

    with connect(dsn) as client:
        df = client.drift.run(monitor)
    if as_json:
        typer.echo(df.drop(columns=["details"]).to_json(orient="records"))
        return
    table = Table(title=f"drift monitor {monitor}")
    for col in ("column_name", "method", "statistic", "p_value", "threshold", "drifted"):
        table.add_column(col)
    for rec in df.to_dict(orient="records"):
        stat, pval = rec["statistic"], rec["p_value"]
        table.add_row(str(rec["column_name"]), str(rec["method"]), "" if stat is None else f"{float(stat):.6g}",
                      "" if pval is None else f"{float(pval):.4g}", f"{float(rec['threshold']):g}",
                      "[red]yes[/red]" if rec["drifted"] else "no")
    console.print(table)


@drift_app.command("run-due")
@fails_cleanly
def drift_run_due(dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Run every drift monitor whose schedule is due (cron-friendly).  Example: pgmlops drift run-due"""
    from .client import connect

    with connect(dsn) as client:
        df = client.drift.run_due()
    if as_json:
        typer.echo(df.to_json(orient="records"))
    else:
        table = Table(title="due drift monitors")
        for col in df.columns:
            table.add_column(str(col))
        for row in df.itertuples(index=False):
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
    if df["error"].notna().any():
        raise typer.Exit(1)


@report_app.command("model")
@fails_cleanly
def report_model(model: Annotated[str, typer.Argument(help="Model name.")],
                 html: HtmlOption = None, static: StaticOption = None,
                 dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Versions, alias history and live performance of a model.  Example: pgmlops report model churn --html m.html
    --static m.png"""
    from .client import connect
    from .report_registry import model_report_html

    with connect(dsn) as client:
        _write("model", "model", model, html, static, as_json, lambda: model_report_html(client, model))


@report_app.command("experiment")
@fails_cleanly
def report_experiment(experiment: Annotated[str, typer.Argument(help="Experiment name.")],
                      html: HtmlOption = None, static: StaticOption = None,
                      dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Per-variant results, lift, p-values and the SRM check.  Example: pgmlops report experiment ab --html e.html
    --static e.png"""
    from .client import connect
    from .report_registry import experiment_report_html

    with connect(dsn) as client:
        _write("experiment", "experiment", experiment, html, static, as_json,
               lambda: experiment_report_html(client, experiment))
