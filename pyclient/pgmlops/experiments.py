"""A/B experiments: assignment, routing, analysis, conclusion (wraps mlops.* SQL).

Assignment is computed in SQL, bit-for-bit compatible with GrowthBook's v2 hashing and
bucket ranges; this module only passes arguments and shapes results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from psycopg.types.json import Jsonb
from rich.progress import Progress

if TYPE_CHECKING:
    from .client import Client

RESULT_COLUMNS = ["variant", "is_control", "weight", "units", "exposures", "metric", "metric_n", "metric_mean",
                  "metric_sd", "lift", "lift_ci_low", "lift_ci_high", "p_value", "chance_to_beat_control",
                  "srm_p_value", "srm_warning", "days_running"]


@dataclass(frozen=True)
class BucketRange:
    """One variant's [range_start, range_end) of the hash line (``mlops.gb_bucket_ranges``)."""

    variant: int
    range_start: float
    range_end: float


@dataclass(frozen=True)
class ZTest:
    """Two-proportion z-test of B vs A; both None when the pooled variance is 0."""

    z: float | None
    p_value: float | None


@dataclass(frozen=True)
class WelchTTest:
    """Welch's t-test of B vs A; all None when both standard deviations are 0."""

    t: float | None
    df: float | None
    p_value: float | None


@dataclass(frozen=True)
class SrmTest:
    """Sample ratio mismatch chi-square and p-value; both None when no unit was observed."""

    chi2: float | None
    p_value: float | None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


class Experiments:
    """``client.experiments``: create, start/pause, assign, route, results, conclude, and the GrowthBook
    hashing and statistics functions they are built on."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def create(self, name: str, variants: Sequence[Mapping[str, Any]], model: str | None = None,
               unit: str = "user_id", primary_metric: str = "conversion", namespace: str | None = None,
               namespace_range: tuple[float, float] = (0.0, 1.0), coverage: float = 1.0, seed: str = "",
               starts_at: datetime | None = None, ends_at: datetime | None = None, description: str = "") -> int:
        """Create a draft experiment (``mlops.create_experiment``); variants ``[{name, alias|version, weight}]``,
        the first is the control. Returns the experiment id."""
        row = self.client.conn.execute(
            "select mlops.create_experiment(name => %s::text, model => %s::text, variants => %s::jsonb,"
            " unit => %s::text, primary_metric => %s::text, namespace => %s::text,"
            " namespace_range => %s::float8[], coverage => %s::float8, seed => %s::text,"
            " starts_at => %s::timestamptz, ends_at => %s::timestamptz, description => %s::text) as id",
            (name, model, Jsonb([dict(v) for v in variants]), unit, primary_metric, namespace,
             [float(x) for x in namespace_range], coverage, seed, starts_at, ends_at, description)).fetchone()
        assert row is not None
        return int(row["id"])

    def start(self, experiment: str) -> None:
        """draft | paused -> running (``mlops.start_experiment``)."""
        self.client.conn.execute("select mlops.start_experiment(%s::text)", (experiment,))

    def pause(self, experiment: str) -> None:
        """running -> paused (``mlops.pause_experiment``)."""
        self.client.conn.execute("select mlops.pause_experiment(%s::text)", (experiment,))

    def set_traffic(self, experiment: str, weights: Sequence[float] | None = None,
                    coverage: float | None = None) -> None:
        """Change weights and/or coverage; assigned units keep their variant."""
        self.client.conn.execute(
            "select mlops.set_experiment_traffic(%s::text, %s::float8[], %s::float8)",
            (experiment, [float(w) for w in weights] if weights is not None else None, coverage))

    def assign(self, experiment: str, unit_id: str) -> str | None:
        """Variant of one unit (sticky); None when the unit is not in the experiment."""
        row = self.client.conn.execute("select mlops.assign(%s::text, %s::text) as v",
                                       (experiment, unit_id)).fetchone()
        assert row is not None
        return None if row["v"] is None else str(row["v"])

    def assign_batch(self, experiment: str, unit_ids: Iterable[str], record: bool = True,
                     chunk_size: int = 200_000, progress: bool = False) -> pd.DataFrame:
        """Assign many units set-based (``mlops.assign_batch``), in chunks; DataFrame (unit_id, variant)."""
        ids = list(unit_ids)
        frames: list[pd.DataFrame] = []
        with Progress(disable=not progress) as bar:
            task = bar.add_task(f"assigning {experiment}", total=len(ids))
            for start in range(0, len(ids), chunk_size):
                chunk = ids[start:start + chunk_size]
                # ids in binary (half the client time of a text array literal); the variants come back
                # as one array in input order (the sort over ord is a presorted pass): building a dict
                # per row halved the rate
                row = self.client.conn.execute(
                    "select pg_catalog.array_agg(a.variant order by a.ord) as variants"
                    " from mlops.assign_batch(%s::text, %b::text[], %s::boolean)"
                    " with ordinality a(unit_id, variant, ord)",
                    (experiment, chunk, record), binary=True).fetchone()
                variants = (row or {}).get("variants") or []
                if len(variants) != len(chunk):
                    raise RuntimeError(f"assign_batch returned {len(variants)} variants for {len(chunk)} unit ids")
                frames.append(pd.DataFrame({"unit_id": chunk, "variant": variants}))
                bar.advance(task, len(chunk))
        if not frames:
            return pd.DataFrame(columns=["unit_id", "variant"])
        return pd.concat(frames, ignore_index=True)

    def route(self, experiment_or_model: str, unit_id: str) -> int:
        """Model version number to serve the unit (``mlops.route``)."""
        row = self.client.conn.execute("select mlops.route(%s::text, %s::text) as v",
                                       (experiment_or_model, unit_id)).fetchone()
        assert row is not None
        return int(row["v"])

    def predict(self, experiment_or_model: str, unit_id: str, features: Mapping[str, float] | Sequence[float],
                request_id: str | None = None) -> dict[str, Any]:
        """Routed, logged in-database prediction (``mlops.predict_routed``): request id, model, experiment,
        variant, version and score."""
        row = self.client.conn.execute(
            "select * from mlops.predict_routed(%s::text, %s::text, %s::jsonb, %s::text)",
            (experiment_or_model, unit_id, Jsonb(dict(features) if isinstance(features, Mapping) else list(features)),
             request_id)).fetchone()
        assert row is not None
        return dict(row)

    def results(self, experiment: str) -> pd.DataFrame:
        """Per-variant analysis (``mlops.experiment_results``) as a DataFrame."""
        rows = self.client.read_conn.execute("select * from mlops.experiment_results(%s::text)",
                                             (experiment,)).fetchall()
        return pd.DataFrame(rows, columns=RESULT_COLUMNS)

    def conclude(self, experiment: str, winner: str | None = None, promote: bool = True,
                 alias: str = "champion", reason: str | None = None) -> dict[str, Any]:
        """Complete the experiment, record the winner and (optionally) promote it; returns the recorded result."""
        row = self.client.conn.execute(
            "select mlops.conclude_experiment(%s::text, winner => %s::text, promote => %s::boolean,"
            " alias => %s::text, reason => %s::text) as r",
            (experiment, winner, promote, alias, reason)).fetchone()
        assert row is not None
        return dict(row["r"])

    def get(self, experiment: str) -> dict[str, Any]:
        """The experiment's row in ``mlops.experiments_bi``."""
        row = self.client.read_conn.execute("select * from mlops.experiments_bi where experiment = %s::text",
                                            (experiment,)).fetchone()
        if row is None:
            from .errors import PgmlopsError

            raise PgmlopsError(f"experiment {experiment!r} does not exist")
        return dict(row)

    # -- GrowthBook-compatible hashing and bucketing (mlops.gb_*)
    def gb_hash(self, seed: str, value: str, version: int = 2) -> float | None:
        """GrowthBook ``hash(seed, value, version)`` in [0, 1); None for an unknown version."""
        row = self.client.conn.execute(
            "select mlops.gb_hash(seed => %s::text, value => %s::text, version => %s::integer) as n",
            (seed, value, version)).fetchone()
        assert row is not None
        return _opt_float(row["n"])

    def gb_hash_batch(self, seed: str, unit_ids: Sequence[str], version: int = 2) -> pd.DataFrame:
        """``gb_hash`` of many unit ids in one statement; DataFrame (unit_id, n) in input order."""
        rows = self.client.conn.execute(
            "select unit_id, n from mlops.gb_hash_batch(seed => %s::text, unit_ids => %s::text[],"
            " version => %s::integer) order by ord", (seed, list(unit_ids), version)).fetchall()
        return pd.DataFrame(rows, columns=["unit_id", "n"])

    def gb_in_namespace(self, unit_id: str, namespace: str, range_start: float, range_end: float) -> bool:
        """GrowthBook ``inNamespace``: whether the unit's namespace hash falls in [range_start, range_end)."""
        row = self.client.conn.execute(
            "select mlops.gb_in_namespace(unit_id => %s::text, namespace => %s::text, range_start => %s::float8,"
            " range_end => %s::float8) as b", (unit_id, namespace, range_start, range_end)).fetchone()
        assert row is not None
        return bool(row["b"])

    def gb_bucket_ranges(self, weights: Sequence[float], coverage: float = 1.0) -> list[BucketRange]:
        """GrowthBook ``getBucketRanges(weights, coverage)``: one range per variant, 0-based."""
        rows = self.client.conn.execute(
            "select variant, range_start, range_end from mlops.gb_bucket_ranges(weights => %s::float8[],"
            " coverage => %s::float8) order by variant", ([float(w) for w in weights], coverage)).fetchall()
        return [BucketRange(int(r["variant"]), float(r["range_start"]), float(r["range_end"])) for r in rows]

    def gb_choose_variation(self, n: float, range_starts: Sequence[float], range_ends: Sequence[float]) -> int:
        """GrowthBook ``chooseVariation``: 0-based variant whose [start, end) holds n, or -1."""
        row = self.client.conn.execute(
            "select mlops.gb_choose_variation(n => %s::float8, range_starts => %s::float8[],"
            " range_ends => %s::float8[]) as v",
            (n, [float(x) for x in range_starts], [float(x) for x in range_ends])).fetchone()
        assert row is not None
        return int(row["v"])

    # -- statistics behind experiment_results
    def two_proportion_ztest(self, successes_a: int, n_a: int, successes_b: int, n_b: int) -> ZTest:
        """Pooled two-sided two-proportion z-test of B vs A."""
        row = self.client.conn.execute(
            "select z, p_value from mlops.two_proportion_ztest(successes_a => %s::bigint, n_a => %s::bigint,"
            " successes_b => %s::bigint, n_b => %s::bigint)", (successes_a, n_a, successes_b, n_b)).fetchone()
        assert row is not None
        return ZTest(_opt_float(row["z"]), _opt_float(row["p_value"]))

    def welch_ttest(self, mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int) -> WelchTTest:
        """Welch's unequal-variance t-test of B vs A from summary statistics (sample sd)."""
        row = self.client.conn.execute(
            "select t, df, p_value from mlops.welch_ttest(mean_a => %s::float8, sd_a => %s::float8, n_a => %s::bigint,"
            " mean_b => %s::float8, sd_b => %s::float8, n_b => %s::bigint)",
            (mean_a, sd_a, n_a, mean_b, sd_b, n_b)).fetchone()
        assert row is not None
        return WelchTTest(_opt_float(row["t"]), _opt_float(row["df"]), _opt_float(row["p_value"]))

    def srm_test(self, observed: Sequence[int], weights: Sequence[float]) -> SrmTest:
        """Sample ratio mismatch: chi-square of observed units per variant against their weights."""
        row = self.client.conn.execute(
            "select chi2, p_value from mlops.srm_test(observed => %s::bigint[], weights => %s::float8[])",
            ([int(o) for o in observed], [float(w) for w in weights])).fetchone()
        assert row is not None
        return SrmTest(_opt_float(row["chi2"]), _opt_float(row["p_value"]))

    def chance_to_beat(self, mean_a: float, se_a: float, mean_b: float, se_b: float) -> float | None:
        """Bayesian chance that B beats A (Gaussian posteriors); None when both standard errors are 0."""
        row = self.client.conn.execute(
            "select mlops.chance_to_beat(mean_a => %s::float8, se_a => %s::float8, mean_b => %s::float8,"
            " se_b => %s::float8) as p", (mean_a, se_a, mean_b, se_b)).fetchone()
        assert row is not None
        return _opt_float(row["p"])
