"""BI benchmark (issue 11): every Grafana panel of dashboards/grafana/pgmlops.json, macros
expanded for the last 24 hours, over the BI views, side by side with a hand-written query
computing the same figures straight from mlops.predictions / mlops.prediction_feedback.
The ratio is the cost of going through the BI views.

    .venv/bin/python -m bench.bench_bi            400k predictions over 48 h, 2 models
    .venv/bin/python -m bench.bench_bi --quick    60k predictions
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from pgmlops.server import LocalServer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tests.test_grafana import expand

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "dashboards" / "grafana" / "pgmlops.json"
MODELS = ("churn", "fraud")

# Hand-written equivalents of the prediction panels, on the base tables.
DIRECT = {
    "Model latency p50 / p95 / p99": """
        with h as (select date_trunc('hour', created_at) as time, model, model_version,
                          percentile_cont(array[0.5, 0.95, 0.99]) within group (order by latency_ms) as q
                     from mlops.predictions where created_at between {start} and {end} and model in ({models})
                    group by 1, 2, 3)
        select time, model || ' v' || model_version || ' p' || p, q[i]
          from h, unnest(array[50, 95, 99]) with ordinality u(p, i) order by 1, 2""",
    "Error rate": """
        select date_trunc('hour', created_at) as time, model || ' v' || model_version,
               avg((error is not null)::int)::float8
          from mlops.predictions where created_at between {start} and {end} and model in ({models})
         group by 1, 2 order by 1, 2""",
    "Accuracy": """
        select date_trunc('hour', p.created_at) as time, p.model || ' v' || p.model_version,
               avg(coalesce(f.correct, f.label = p.label)::int)::float8
          from mlops.predictions p join mlops.prediction_feedback f on f.request_id = p.request_id
         where p.created_at between {start} and {end} and p.model in ({models})
         group by 1, 2 order by 1, 2""",
    "Predictions per variant": """
        select floor(extract(epoch from created_at)/3600)*3600 as time,
               coalesce(experiment || '/' || variant, 'no experiment'), count(*)
          from mlops.predictions where created_at between {start} and {end} and model in ({models})
         group by 1, 2 order by 1, 2""",
}


def _median(conn: psycopg.Connection[Any], sql: str, repeat: int) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        rows = len(conn.execute(sql).fetchall())
        times.append(time.perf_counter() - t)
    return statistics.median(times), rows


def _setup(conn: psycopg.Connection[Any], n: int, progress: Progress) -> None:
    conn.execute("create extension pgmlops cascade")
    for m in MODELS:
        conn.execute("select mlops.register_model(name => %s::text, task => 'classification')", (m,))
        for v in (1, 2):
            conn.execute("select mlops.create_model_version(model => %s::text, artifact => %s::bytea)",
                         (m, f"{m} {v}".encode()))
    task = progress.add_task("logging predictions", total=n)
    chunk = 20000
    now = datetime.now(UTC)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        conn.execute("select mlops.create_prediction_staging()")
        conn.execute(f"""
            insert into pg_temp.mlops_prediction_staging
                   (request_id, model, version, experiment, variant, unit_id, score, label, confidence,
                    latency_ms, error, created_at)
            select 'r' || i, (array{list(MODELS)})[i % 2 + 1], i % 4 / 2 + 1, 'ab', (array['a','b'])[i % 4 / 2 + 1],
                   'u' || (i % 5000), (i % 100) / 100.0, case when i % 3 = 0 then 'yes' else 'no' end,
                   0.5 + (i % 50) / 100.0, 1 + (i::int8 * 7919 % 1000) / 10.0,
                   case when i % 97 = 0 then 'timeout' end,
                   '{now.isoformat()}'::timestamptz - (i % 2880) * interval '1 minute'
              from generate_series({lo}, {hi - 1}) i""")
        conn.execute("select mlops.log_staged_predictions()")
        conn.execute(f"""insert into mlops.prediction_feedback (request_id, label)
                         select 'r' || i, case when i % 2 = 0 then 'yes' else 'no' end
                           from generate_series({lo}, {hi - 1}) i where i % 2 = 0""")
        progress.update(task, completed=hi)
    conn.execute("analyze")


def main(quick: bool = False) -> list[dict[str, Any]]:
    n = 60_000 if quick else 400_000
    repeat = 5
    console = Console()
    base = Path(tempfile.mkdtemp(prefix="pgmlops-bench-bi-"))
    base.chmod(0o755)
    server = LocalServer(base / "cluster", settings=(("fsync", "off"), ("synchronous_commit", "off")))
    server.start()
    results: list[dict[str, Any]] = []
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            with Progress(console=console) as progress:
                _setup(conn, n, progress)
            end = datetime.now(UTC)
            start = end - timedelta(hours=24)
            panels = json.loads(DASHBOARD.read_text())["panels"]
            models = ", ".join(f"'{m}'" for m in MODELS)
            for panel in panels:
                sql = expand(panel["targets"][0]["rawSql"], start, end, {"model": list(MODELS)})
                view_s, view_rows = _median(conn, sql, repeat)
                row: dict[str, Any] = {"panel": panel["title"], "predictions": n, "view_ms": view_s * 1000,
                                       "rows": view_rows, "direct_ms": None, "ratio": None}
                if panel["title"] in DIRECT:
                    direct = DIRECT[panel["title"]].format(start=f"'{start.isoformat()}'",
                                                           end=f"'{end.isoformat()}'", models=models)
                    direct_s, direct_rows = _median(conn, direct, repeat)
                    row.update(direct_ms=direct_s * 1000, ratio=view_s / direct_s, direct_rows=direct_rows)
                results.append(row)
    finally:
        server.destroy()
    table = Table(title=f"Grafana panels: BI views vs direct SQL ({n:,} predictions, last 24 h, median of {repeat})")
    for col in ("panel", "rows", "BI view ms", "direct ms", "view / direct"):
        table.add_column(col, justify="left" if col == "panel" else "right")
    for r in results:
        table.add_row(r["panel"], str(r["rows"]), f"{r['view_ms']:.1f}",
                      "" if r["direct_ms"] is None else f"{r['direct_ms']:.1f}",
                      "" if r["ratio"] is None else f"{r['ratio']:.2f}x")
    console.print(table)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)
