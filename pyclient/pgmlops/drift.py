"""Drift detection: profiles, monitors, results, reports (wraps mlops.* SQL).

Everything is computed in the database: ``profile`` summarizes reference data once,
``monitor`` defines what to compare, ``run`` scans the current data once and returns the
per-column statistics as a DataFrame, ``report`` renders a self-contained HTML page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from psycopg.types.json import Jsonb

if TYPE_CHECKING:
    from .client import Client

RESULT_COLUMNS = ["run_id", "column_name", "column_type", "method", "statistic", "p_value", "threshold", "drifted",
                  "details"]


@dataclass(frozen=True)
class TestResult:
    """A statistic with its p-value (``method`` / ``dof`` where the test has them)."""

    statistic: float
    p_value: float
    method: str | None = None
    dof: int | None = None


@dataclass(frozen=True)
class MMDResult:
    """Unbiased MMD^2 (RBF kernel), its permutation p-value and the median-heuristic bandwidth."""

    mmd2: float
    p_value: float
    bandwidth: float


def _floats(values: Sequence[float] | Any) -> list[float | None]:
    return [None if v is None else float(v) for v in list(values)]


class Drift:
    """``client.drift``: statistics, reference profiles, monitors, runs and reports.

    The aggregates ``mlops.histogram(value, edges)`` and ``mlops.psi_agg(value, profile, column_name)`` have no
    method: they aggregate rows inside a query (``select mlops.psi_agg(x, 'prof', 'x') from t``), so use them in SQL."""

    def __init__(self, client: Client) -> None:
        self.client = client

    # -- statistics (mlops.ks_2samp, wasserstein, js_distance, chi2_test, z_test_proportions, psi, psi_binned,
    #    mmd_rbf)
    def ks_2samp(self, reference: Sequence[float], current: Sequence[float]) -> TestResult:
        """Two-sided two-sample KS test (exact p-value up to 10000 rows per side, as scipy)."""
        row = self.client.conn.execute(
            "select statistic, p_value, method from mlops.ks_2samp(%s::float8[], %s::float8[])",
            (_floats(reference), _floats(current))).fetchone()
        assert row is not None
        return TestResult(row["statistic"], row["p_value"], method=row["method"])

    def wasserstein(self, reference: Sequence[float], current: Sequence[float]) -> float:
        """First Wasserstein distance between two samples."""
        row = self.client.conn.execute("select mlops.wasserstein(%s::float8[], %s::float8[]) as v",
                                       (_floats(reference), _floats(current))).fetchone()
        assert row is not None
        return float(row["v"])

    def js_distance(self, reference: Sequence[Any], current: Sequence[Any], base: float | None = None) -> float:
        """Jensen-Shannon distance: of two weight vectors (numbers) or two categorical samples (strings);
        natural log unless ``base`` is given."""
        if all(isinstance(v, str) or v is None for v in [*reference, *current]):
            query = ("select mlops.js_distance(reference => %s::text[], current => %s::text[], base => %s::float8)"
                     " as v")
            args: tuple[Any, Any, float | None] = (list(reference), list(current), base)
        else:
            query = "select mlops.js_distance(p => %s::float8[], q => %s::float8[], base => %s::float8) as v"
            args = (_floats(reference), _floats(current), base)
        row = self.client.conn.execute(query, args).fetchone()
        assert row is not None
        return float(row["v"])

    def chi2_test(self, reference: Sequence[Any], current: Sequence[Any]) -> TestResult:
        """Chi-square test: of per-category counts (numbers) or of two categorical samples (strings)."""
        if all(isinstance(v, str) or v is None for v in [*reference, *current]):
            query = "select * from mlops.chi2_test(%s::text[], %s::text[])"
            args: tuple[Any, Any] = (list(reference), list(current))
        else:
            query = "select * from mlops.chi2_test(%s::float8[], %s::float8[])"
            args = (_floats(reference), _floats(current))
        row = self.client.conn.execute(query, args).fetchone()
        assert row is not None
        return TestResult(row["statistic"], row["p_value"], dof=row["dof"])

    def z_test_proportions(self, reference_successes: int, reference_total: int, current_successes: int,
                           current_total: int) -> TestResult:
        """Two-sided pooled two-proportion Z-test."""
        row = self.client.conn.execute(
            "select z, p_value from mlops.z_test_proportions(%s::bigint, %s::bigint, %s::bigint, %s::bigint)",
            (reference_successes, reference_total, current_successes, current_total)).fetchone()
        assert row is not None
        return TestResult(row["z"], row["p_value"])

    def psi(self, reference: Sequence[float], current: Sequence[float], bins: int = 10) -> float:
        """Population stability index of two numeric samples over the reference's quantile bins."""
        row = self.client.conn.execute("select mlops.psi(%s::float8[], %s::float8[], %s::integer) as v",
                                       (_floats(reference), _floats(current), bins)).fetchone()
        assert row is not None
        return float(row["v"])

    def psi_binned(self, reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
        """Population stability index of two per-bin count vectors (proportions floored at 1e-4)."""
        row = self.client.conn.execute(
            "select mlops.psi_binned(reference_counts => %s::float8[], current_counts => %s::float8[]) as v",
            (_floats(reference_counts), _floats(current_counts))).fetchone()
        assert row is not None
        return float(row["v"])

    def mmd_rbf(self, reference: Sequence[Sequence[float]] | Any, current: Sequence[Sequence[float]] | Any,
                permutations: int = 200) -> MMDResult:
        """MMD^2 between two samples of vectors (rows) with a permutation p-value (pgmlops_python)."""
        row = self.client.conn.execute(
            "select mmd2, p_value, bandwidth from mlops.mmd_rbf(reference => %s::real[], current => %s::real[],"
            " permutations => %s::integer)",
            ([_floats(v) for v in reference], [_floats(v) for v in current], permutations)).fetchone()
        assert row is not None
        return MMDResult(float(row["mmd2"]), float(row["p_value"]), float(row["bandwidth"]))

    # -- profiles and monitors
    def profile(self, name: str, *, query: str | None = None, model: str | None = None,
                feature_group: str | None = None, window_start: datetime | None = None,
                window_end: datetime | None = None, columns: Sequence[str] | None = None,
                sample_size: int = 1000, vector_sample: int = 500, nn_reference: int = 10000,
                replace: bool = False) -> int:
        """Create (or recompute with ``replace=True``) a reference profile; returns its id.

        Vector columns keep ``vector_sample`` reference vectors for MMD and ``nn_reference`` (HNSW-indexed)
        for nearest-neighbour distance drift."""
        row = self.client.conn.execute(
            "select mlops.create_reference_profile(name => %s::text, query => %s::text, model => %s::text, "
            "feature_group => %s::text, window_start => %s::timestamptz, window_end => %s::timestamptz, "
            "columns => %s::text[], sample_size => %s::integer, vector_sample => %s::integer, "
            "nn_reference => %s::integer, replace => %s::boolean) as id",
            (name, query, model, feature_group, window_start, window_end,
             list(columns) if columns is not None else None, sample_size, vector_sample, nn_reference,
             replace)).fetchone()
        assert row is not None
        return int(row["id"])

    def monitor(self, name: str, profile: str, *, query: str | None = None, model: str | None = None,
                feature_group: str | None = None, time_window: timedelta | None = None,
                columns: Sequence[str] | Mapping[str, str] | None = None,
                thresholds: Mapping[str, float] | None = None, drift_share: float = 0.5,
                schedule: timedelta | None = None, about_model: str | None = None, replace: bool = False) -> int:
        """Create (or redefine) a drift monitor; ``columns`` is a list or a column -> method mapping."""
        cols: Any = None
        if columns is not None:
            cols = Jsonb(dict(columns) if isinstance(columns, Mapping) else list(columns))
        row = self.client.conn.execute(
            "select mlops.create_drift_monitor(name => %s::text, profile => %s::text, query => %s::text, "
            "model => %s::text, feature_group => %s::text, time_window => %s::interval, columns => %s::jsonb, "
            "thresholds => %s::jsonb, drift_share => %s::float8, schedule => %s::interval, "
            "about_model => %s::text, replace => %s::boolean) as id",
            (name, profile, query, model, feature_group, time_window, cols, Jsonb(dict(thresholds or {})),
             drift_share, schedule, about_model, replace)).fetchone()
        assert row is not None
        return int(row["id"])

    def run(self, name: str) -> pd.DataFrame:
        """Run a monitor now; one row per (column, method) with statistic, p-value, threshold, drifted."""
        rows = self.client.conn.execute("select * from mlops.run_drift_monitor(%s::text)", (name,)).fetchall()
        return pd.DataFrame(rows, columns=RESULT_COLUMNS)

    def run_due(self) -> pd.DataFrame:
        """Run every monitor whose schedule is due (what pg_cron or `pgmlops drift run-due` calls)."""
        rows = self.client.conn.execute("select * from mlops.run_due_monitors()").fetchall()
        return pd.DataFrame(rows, columns=["monitor", "run_id", "dataset_drift", "error"])

    def last_run(self, name: str) -> dict[str, Any]:
        """The latest run row of a monitor (raises when it never ran)."""
        from .errors import PgmlopsError

        row = self.client.read_conn.execute(
            "select r.*, m.name as monitor, m.model, p.name as profile from mlops.drift_runs r "
            "join mlops.drift_monitors m on m.id = r.monitor_id join mlops.drift_profiles p on p.id = m.profile_id "
            "where m.name = %s::text order by r.id desc limit 1", (name,)).fetchone()
        if row is None:
            raise PgmlopsError(f"drift monitor {name!r} does not exist or never ran")
        return dict(row)

    def results(self, name: str, run_id: int | None = None) -> pd.DataFrame:
        """Results of a run (default: the monitor's latest run)."""
        rid = run_id if run_id is not None else int(self.last_run(name)["id"])
        rows = self.client.read_conn.execute(
            "select * from mlops.drift_results where run_id = %s::bigint order by column_name, method",
            (rid,)).fetchall()
        return pd.DataFrame(rows, columns=RESULT_COLUMNS)

    def report(self, name: str, path: str | Path | None = None, run_id: int | None = None) -> str:
        """Self-contained HTML report of a monitor run (default: latest); written to ``path`` when given."""
        from .report import drift_report_html

        run = self.last_run(name)
        if run_id is not None:
            run = {**run, **dict(self.client.read_conn.execute(
                "select * from mlops.drift_runs where id = %s::bigint", (run_id,)).fetchone() or {})}
        html = drift_report_html(name, run, self.results(name, int(run["id"])))
        if path is not None:
            Path(path).write_text(html, encoding="utf-8")
        return html
