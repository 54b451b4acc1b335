"""Shared HTML report machinery: one self-contained file (plotly.js inlined once, figures as
``<div>`` + inline script, no request to any other host), rendered through a jinja2 template.

Model and experiment reports reuse it::

    from pgmlops.report import Section, render_report
    html = render_report("Model churn v3", [Section("Metrics", table=[{"metric": "auc", "value": 0.91}]),
                                             Section("ROC", figures=[fig])])

Static output: ``write_png(title, sections, path)`` stacks a report's figures into one PNG (kaleido,
which drives the system Chromium; nothing is downloaded). ``with static_png(path): ...`` makes every
``render_report`` inside the block also write that PNG (how ``pgmlops report ... --static`` works).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"
_STATIC_PNG: ContextVar[Path | None] = ContextVar("pgmlops_static_png", default=None)


@dataclass
class Section:
    """One block of a report: heading, metric tiles, text, a table (rows of dicts or a DataFrame),
    and plotly figures."""

    heading: str = ""
    text: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    table: Sequence[Mapping[str, Any]] | pd.DataFrame | None = None
    figures: Sequence[Any] = field(default_factory=list)


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]))


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The plotly.js bundle shipped with the plotly package (inlined once per report)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs()).replace("</script", "<\\/script")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pgmlops")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "dev"


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.6g}"
    return "" if value is None else value


def render_report(title: str, sections: Sequence[Section], template: str = "report.html.j2") -> str:
    """Render sections into one self-contained HTML page (no external URL is loaded)."""
    rendered = []
    for s in sections:
        rows: list[dict[str, Any]] = []
        if isinstance(s.table, pd.DataFrame):
            rows = [{str(k): _cell(v) for k, v in r.items()} for r in s.table.to_dict(orient="records")]
        elif s.table is not None:
            rows = [{str(k): _cell(v) for k, v in r.items()} for r in s.table]
        columns = list(rows[0].keys()) if rows else []
        figure_html = [fig.to_html(full_html=False, include_plotlyjs=False,
                                   config={"displaylogo": False})
                       for fig in s.figures]
        rendered.append({"heading": s.heading, "text": s.text, "metrics": dict(s.metrics), "table": rows,
                         "table_columns": columns, "figure_html": figure_html})
    static = _STATIC_PNG.get()
    if static is not None:
        write_png(title, sections, static)
    return _env().get_template(template).render(
        title=title, sections=rendered, plotly_js=plotly_js(), version=_version(),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))


@contextmanager
def static_png(path: Path | None) -> Iterator[None]:
    """While active, every ``render_report`` also writes its figures as one PNG to ``path`` (None: off)."""
    token = _STATIC_PNG.set(path)
    try:
        yield
    finally:
        _STATIC_PNG.reset(token)


def static_figure(title: str, sections: Sequence[Section], width: int = 1100) -> Any:
    """One plotly figure stacking every figure of the sections (one row each, their titles kept), the
    report title and the first section's metric tiles as heading; a placeholder row when there is no plot."""
    from plotly.subplots import make_subplots

    figures = [f for s in sections for f in s.figures]
    metrics = next((s.metrics for s in sections if s.metrics), {})
    subtitle = " · ".join(f"{k}: {v}" for k, v in metrics.items())
    heights = [int(f.layout.height or 400) for f in figures] or [200]
    spacing = min(80 / sum(heights), 0.9 / max(1, len(heights) - 1))
    out = make_subplots(rows=len(heights), cols=1, row_heights=heights, vertical_spacing=spacing,
                        subplot_titles=[str(f.layout.title.text or "") for f in figures] or [""])
    for row, fig in enumerate(figures, start=1):
        for trace in fig.data:
            out.add_trace(trace, row=row, col=1)
        out.update_xaxes(title_text=fig.layout.xaxis.title.text, row=row, col=1)
        out.update_yaxes(title_text=fig.layout.yaxis.title.text, row=row, col=1)
    if not figures:
        out.add_annotation(text="(this report has no plots: see the HTML report's tables)", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5)
        out.update_xaxes(visible=False)
        out.update_yaxes(visible=False)
    barmode = next((f.layout.barmode for f in figures if f.layout.barmode), None)
    out.update_layout(title={"text": f"{title}<br><sup>{subtitle}</sup>" if subtitle else title},
                      barmode=barmode, width=width, height=sum(heights) + 140, template="plotly_white",
                      margin={"l": 60, "r": 30, "t": 110, "b": 60})
    return out


def write_png(title: str, sections: Sequence[Section], path: Path) -> Path:
    """Write the report's figures as one PNG (kaleido + the system Chromium, offline)."""
    from importlib.util import find_spec

    if find_spec("kaleido") is None:  # plotly's PNG export needs it
        from .errors import PgmlopsError

        raise PgmlopsError("static PNG output needs kaleido: pip install 'pgmlops[static]'")
    fig = static_figure(title, sections)
    Path(path).write_bytes(fig.to_image(format="png", width=fig.layout.width, height=fig.layout.height))
    return Path(path)


def _histogram_figure(column: str, details: Mapping[str, Any]) -> Any:
    import plotly.graph_objects as go

    if "categories" in details:
        labels = [str(c) for c in details["categories"]]
        ref = [float(x) for x in details["reference_counts"]]
        cur = [float(x) for x in details["current_counts"]]
    else:
        edges = [float(e) for e in details.get("edges") or []]
        labels = ([f"< {edges[0]:.4g}"] + [f"[{a:.4g}, {b:.4g})" for a, b in itertools.pairwise(edges)]
                  + [f">= {edges[-1]:.4g}"]) if edges else ["all"]
        ref = [float(x) for x in details.get("reference_hist") or []]
        cur = [float(x) for x in details.get("current_hist") or []]
    rs, cs = sum(ref) or 1.0, sum(cur) or 1.0
    fig = go.Figure([go.Bar(name="reference", x=labels, y=[x / rs for x in ref]),
                     go.Bar(name="current", x=labels, y=[x / cs for x in cur])])
    fig.update_layout(title=f"{column}: reference vs current", barmode="group", yaxis_title="share of rows",
                      height=340, margin={"l": 40, "r": 20, "t": 50, "b": 60})
    return fig


def _vector_figure(column: str, rows: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure([go.Bar(name="statistic", x=list(rows["method"]), y=[float(v) for v in rows["statistic"]]),
                     go.Scatter(name="threshold", x=list(rows["method"]), y=[float(v) for v in rows["threshold"]],
                                mode="markers", marker={"symbol": "line-ew-open", "size": 30})])
    fig.update_layout(title=f"{column}: embedding drift", height=320, margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return fig


def drift_report_html(monitor: str, run: Mapping[str, Any], results: pd.DataFrame) -> str:
    """The drift report of one monitor run: summary tiles, statistics table, per-column histograms."""
    drifted = sorted(set(results.loc[results["drifted"], "column_name"])) if len(results) else []
    summary = Section(
        heading="Summary",
        metrics={"dataset drift": "YES" if run["dataset_drift"] else "no",
                 "drifted columns": f"{run['columns_drifted']} / {run['columns_total']}",
                 "drift share": f"{float(run['share_drifted']):.0%}",
                 "reference rows": run["reference_rows"], "current rows": run["current_rows"]},
        text=(f"Monitor {monitor} (profile {run.get('profile', '')}"
              f"{', model ' + str(run['model']) if run.get('model') else ''}), run {run['id']} at {run['started_at']}. "
              + (f"Drifted: {', '.join(drifted)}." if drifted else "No column drifted.")))
    table = results.drop(columns=["details", "run_id"]).rename(columns={"column_name": "column", "column_type": "type"})
    sections = [summary, Section(heading="Statistics", table=table)]
    figures = []
    for column, rows in results.groupby("column_name", sort=True):
        if rows["column_type"].iloc[0] == "vector":
            figures.append(_vector_figure(str(column), rows))
        else:
            details = rows["details"].iloc[0] or {}
            if details.get("reference_hist") is not None or details.get("categories") is not None:
                figures.append(_histogram_figure(str(column), details))
    sections.append(Section(heading="Distributions", figures=figures))
    return render_report(f"Drift report: {monitor}", sections)
