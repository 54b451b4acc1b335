"""Model and experiment HTML reports (same machinery as the drift report: pgmlops.report)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import PgmlopsError
from .report import Section, render_report

if TYPE_CHECKING:
    from .client import Client


def _frame(client: Client, query: str, params: tuple[Any, ...]) -> pd.DataFrame:
    cur = client.conn.execute(query, params)
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description or []])


def model_report_html(client: Client, model: str, since_hours: int = 24 * 30) -> str:
    """Versions with metrics and aliases, the alias history, and live performance per version."""
    import plotly.graph_objects as go

    versions = _frame(client, "select version, status, aliases, flavor, metrics, time as created_at, training_set "
                              "from mlops.model_versions_bi where model = %s::text order by version", (model,))
    if versions.empty:
        raise PgmlopsError(f"unknown model {model!r} (or it has no versions)")
    history = _frame(client, "select time, alias, action, from_version, to_version, reason, forced "
                             "from mlops.alias_history where model = %s::text order by time", (model,))
    perf = _frame(client, "select * from mlops.model_performance(model => %s::text, "
                          "since => pg_catalog.now() - %s::integer * interval '1 hour', bucket => '1 hour')",
                  (model, since_hours))
    figures = []
    if not history.empty:
        fig = go.Figure()
        for alias, rows in history.groupby("alias"):
            fig.add_trace(go.Scatter(x=rows["time"], y=rows["to_version"], mode="lines+markers", name=str(alias),
                                     line={"shape": "hv"}))
        fig.update_layout(title="Alias history (version under each alias)", yaxis_title="version", height=320)
        figures.append(fig)
    perf_figures = []
    if not perf.empty:
        lat = go.Figure()
        for version, rows in perf.groupby("model_version"):
            lat.add_trace(go.Scatter(x=rows["time"], y=rows["latency_p95"], name=f"v{version} p95 ms"))
        lat.update_layout(title="Latency p95 per version", yaxis_title="ms", height=320)
        acc = go.Figure([go.Bar(x=[f"v{v}" for v in g.index], y=g.values, name="accuracy")
                         for g in [perf.groupby("model_version")["accuracy"].mean()]])
        acc.update_layout(title="Accuracy from feedback per version", height=320)
        perf_figures = [lat, acc]
    sections = [
        Section("Versions", metrics={"versions": len(versions),
                                     "production": ", ".join(f"v{v}" for v in versions.loc[
                                         versions["aliases"].str.contains("production"), "version"]) or "none"},
                table=versions),
        Section("Aliases", text="Every move of every alias, who moved it and why (mlops.alias_history).",
                table=history, figures=figures),
        Section("Live performance", text="From the prediction log and feedback (mlops.model_performance).",
                table=perf.tail(48), figures=perf_figures),
    ]
    return render_report(f"Model {model}", sections)


def experiment_report_html(client: Client, experiment: str) -> str:
    """Per-variant results with lift, confidence interval, p-value and the SRM check."""
    import plotly.graph_objects as go

    results = _frame(client, "select * from mlops.experiment_results(%s::text)", (experiment,))
    info = _frame(client, "select status, winner, promoted_version from mlops.experiments where name = %s::text",
                  (experiment,))
    fig = go.Figure([go.Bar(x=results["variant"], y=results["metric_mean"], name="metric mean",
                            error_y={"type": "data", "array": (1.96 * results["metric_sd"]
                                     / results["metric_n"].clip(lower=1) ** 0.5).fillna(0).tolist()})])
    fig.update_layout(title="Primary metric per variant (95% CI)", height=340)
    units = go.Figure([go.Bar(x=results["variant"], y=results["units"], name="units")])
    units.update_layout(title="Units per variant (SRM check)", height=300)
    status = info.iloc[0].to_dict() if not info.empty else {}
    srm = bool(results["srm_warning"].any()) if "srm_warning" in results else False
    sections = [
        Section("Summary", metrics={"status": status.get("status", ""), "winner": status.get("winner") or "—",
                                    "promoted version": status.get("promoted_version") or "—",
                                    "SRM": "warning" if srm else "ok"}),
        Section("Results", table=results, figures=[fig, units]),
    ]
    return render_report(f"Experiment {experiment}", sections)
