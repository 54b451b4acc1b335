"""The demo loop end to end on a small dataset (make demo runs it at full size)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from pgmlops.demo.runner import run_demo

from .conftest import ROOT


def test_demo_runs_the_whole_loop_and_reruns_with_reset(database_factory: Callable[..., str],
                                                         tmp_path: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    dsn = database_factory(None, prefix="demo")
    summary = run_demo(dsn, customers=2_500, out_dir=tmp_path)
    facts = summary["facts"]
    assert facts["aucs"][2] > facts["aucs"][1] > 0.55, "the full-feature model must learn more"
    assert "sessions_7d" in facts["drifted"] and "spend_30d" not in facts["drifted"]
    assert facts["duplicate_clusters"] >= 1
    for path in summary["reports"].values():
        html = Path(path).read_text()
        assert "<html" in html.lower() and "plotly" in html.lower()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select winner from mlops.experiments where name = 'churn_ab'").fetchone() == (
            "challenger",)
        assert conn.execute("select count(*) from mlops.alias_history where model = 'churn'").fetchone()[0] >= 4

    for kind, name in (("model", "churn"), ("experiment", "churn_ab"), ("drift", "churn_features")):
        out = tmp_path / f"cli-{kind}.html"
        proc = subprocess.run([sys.executable, "-m", "pgmlops.cli", "report", kind, name, "--html", str(out),
                               "--json", "--dsn", dsn], capture_output=True, text=True, cwd=ROOT, check=False)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == {"report": kind, {"model": "model", "experiment": "experiment",
                                                            "drift": "monitor"}[kind]: name, "html": str(out)}
        assert out.stat().st_size > 100_000  # plotly.js is inlined

    # A second run refuses without --reset (the database holds demo objects), then works with it.
    proc = subprocess.run([sys.executable, "-m", "pgmlops.cli", "demo", "--dsn", dsn, "--customers", "2500",
                           "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 1 and "--reset" in proc.stderr, proc.stderr
    again = run_demo(dsn, reset=True, customers=2_500, out_dir=tmp_path)
    assert again["facts"]["aucs"] == facts["aucs"], "the demo data is deterministic"


@pytest.mark.parametrize("kind", ["model", "experiment"])
def test_report_for_unknown_name_fails_cleanly(kind: str, dsn: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pgmlops.cli", "report", kind, "nope", "--html", "/tmp/x.html",
                           "--dsn", dsn], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode != 0 and "nope" in proc.stderr, proc.stderr
