"""HTML reports opened in a real browser (Debian's chromium through Playwright, no browser
download): no request leaves the file, the expected number of plotly plots renders, no
console errors. A screenshot of each report is taken; it replaces the README's picture in
docs/img/ only with PGMLOPS_UPDATE_SCREENSHOTS=1 (a test run leaves the repository as it was)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pgmlops
import psycopg
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .bi.fixture_data import MODEL, Populated, populate
from .conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IMG = ROOT / "docs" / "img"


def screenshot_path(tmp_path: Path, name: str) -> Path:
    """Where a report's screenshot goes: the README's picture when asked to update them, else tmp_path."""
    return (IMG if os.environ.get("PGMLOPS_UPDATE_SCREENSHOTS") == "1" else tmp_path) / name
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")


@dataclass
class Opened:
    plots: int
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    text: str = ""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def open_report(browser: Any, path: Path, expected_plots: int, screenshot: Path | None = None) -> Opened:
    """Open ``path``, wait for ``expected_plots`` plotly plots, record external requests and errors."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    out = Opened(plots=0)

    def on_request(route: Any) -> None:
        url = route.request.url
        if url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            out.external.append(url)
            route.abort()

    page.route("**/*", on_request)
    page.on("console", lambda m: out.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: out.errors.append(f"page error: {e}"))
    page.goto(path.as_uri(), wait_until="load")
    rendered = "[...document.querySelectorAll('.js-plotly-plot')].filter(d => d.querySelector('.main-svg')).length"
    with contextlib.suppress(PlaywrightTimeout):  # a shortfall shows in out.plots
        page.wait_for_function(f"{rendered} >= {expected_plots}", timeout=30000)
    page.wait_for_timeout(300)
    out.plots = page.evaluate(rendered)
    out.text = page.inner_text("body")
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.read_bytes().startswith(b"\x89PNG"), screenshot
    page.close()
    return out


def test_checker_catches_external_requests_and_errors(browser: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><img src='https://example.invalid/x.png'>"
                   "<script>console.error('boom'); undefinedFn();</script></body></html>")
    opened = open_report(browser, bad, 0)
    assert opened.external == ["https://example.invalid/x.png"]
    assert any("boom" in e for e in opened.errors) and any("undefinedFn" in e for e in opened.errors)
    assert opened.plots == 0


def test_generic_report_renders_offline(browser: Any, tmp_path: Path) -> None:
    import plotly.graph_objects as go
    from pgmlops.report import Section, render_report

    figs = [go.Figure(go.Bar(x=["a", "b"], y=[1, i])) for i in range(3)]
    html = render_report("Machinery check", [Section("Numbers", metrics={"n": 3}, table=[{"k": "v"}],
                                                      figures=figs)])
    path = tmp_path / "generic.html"
    path.write_text(html)
    opened = open_report(browser, path, 3)
    assert opened.external == [] and opened.errors == [] and opened.plots == 3
    assert "Machinery check" in opened.text


@pytest.fixture(scope="module")
def drift_db(database_factory: Callable[..., str]) -> str:
    dsn = database_factory("extension", prefix="report_drift")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("create table public.ref as select (g % 97)::float8 / 97 as amount, "
                  "(array['a','b','c'])[g % 3 + 1] as plan from generate_series(1, 600) g")
        c.execute("create table public.cur as select (g % 97)::float8 / 97 + 0.6 as amount, "
                  "(array['a','b','c'])[g % 3 + 1] as plan from generate_series(1, 600) g")
        c.execute("select mlops.create_reference_profile(name => 'br_ref', query => 'select * from public.ref')")
        c.execute("select mlops.create_drift_monitor(name => 'br_monitor', profile => 'br_ref', "
                  "query => 'select * from public.cur')")
        c.execute("select * from mlops.run_drift_monitor('br_monitor')")
    return dsn


def test_drift_report_in_browser(browser: Any, drift_db: str, tmp_path: Path) -> None:
    path = tmp_path / "drift.html"
    with pgmlops.connect(drift_db) as client:
        client.drift.report("br_monitor", path)
        columns = len(client.drift.results("br_monitor")["column_name"].unique())
    opened = open_report(browser, path, columns, screenshot_path(tmp_path, "drift_report.png"))
    assert opened.external == [], f"report requested other hosts: {opened.external}"
    assert opened.errors == [], opened.errors
    assert opened.plots == columns == 2
    assert "br_monitor" in opened.text and "amount" in opened.text


@pytest.fixture(scope="module")
def registry_db(database_factory: Callable[..., str]) -> tuple[str, Populated]:
    """Model bi_churn (2 versions, predictions, feedback) and experiment bi_exp from the BI fixture."""
    dsn = database_factory("extension", prefix="report_registry")
    with psycopg.connect(dsn, autocommit=True) as c:
        populated = populate(c)
        c.execute("select mlops.set_alias(model => %s::text, alias => 'production', version => 1)", (MODEL,))
        c.execute("select mlops.set_alias(model => %s::text, alias => 'production', version => 2)", (MODEL,))
    return dsn, populated


def test_model_report_in_browser(browser: Any, registry_db: tuple[str, Populated], tmp_path: Path) -> None:
    from pgmlops.report_registry import model_report_html

    path = tmp_path / "model.html"
    with pgmlops.connect(registry_db[0]) as client:
        path.write_text(model_report_html(client, MODEL))
    # alias history + latency per version + accuracy per version
    opened = open_report(browser, path, 3, screenshot_path(tmp_path, "model_report.png"))
    assert opened.external == [], f"report requested other hosts: {opened.external}"
    assert opened.errors == [], opened.errors
    assert opened.plots == 3
    assert f"Model {MODEL}" in opened.text and "production" in opened.text


def test_experiment_report_in_browser(browser: Any, registry_db: tuple[str, Populated], tmp_path: Path) -> None:
    from pgmlops.report_registry import experiment_report_html

    path = tmp_path / "experiment.html"
    with pgmlops.connect(registry_db[0]) as client:
        path.write_text(experiment_report_html(client, "bi_exp"))
    opened = open_report(browser, path, 2, screenshot_path(tmp_path, "experiment_report.png"))
    assert opened.external == [], f"report requested other hosts: {opened.external}"
    assert opened.errors == [], opened.errors
    assert opened.plots == 2
    assert "Experiment bi_exp" in opened.text
    for variant in registry_db[1].assignments:
        assert variant in opened.text


# ---------------------------------------------------------------- --static PNG (kaleido, system chromium)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which must come first in a valid PNG."""
    assert data[:8] == PNG_MAGIC, "not a PNG"
    assert data[12:16] == b"IHDR", "PNG without a leading IHDR chunk"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgmlops.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          check=False, timeout=300)


@pytest.mark.parametrize(("kind", "name", "plots"), [("drift", "br_monitor", 2), ("model", MODEL, 3),
                                                     ("experiment", "bi_exp", 2)])
def test_static_png_of_each_report(kind: str, name: str, plots: int, drift_db: str,
                                   registry_db: tuple[str, Populated], tmp_path: Path) -> None:
    dsn = drift_db if kind == "drift" else registry_db[0]
    png = tmp_path / f"{kind}.png"
    html = tmp_path / f"{kind}.html"
    proc = _cli("report", kind, name, "--html", str(html), "--static", str(png), "--json", "--dsn", dsn)
    assert proc.returncode == 0, proc.stderr
    key = "monitor" if kind == "drift" else kind
    assert json.loads(proc.stdout) == {"report": kind, key: name, "html": str(html), "png": str(png)}
    data = png.read_bytes()
    width, height = _png_size(data)
    # one row per plot (each 300-340 px high) stacked under the title
    assert width == 1100 and height >= 300 * plots, (width, height)
    assert len(data) > 20_000, f"suspiciously small PNG ({len(data)} bytes)"
    assert html.stat().st_size > 100_000


def test_static_png_alone_and_bad_options(drift_db: str, tmp_path: Path) -> None:
    png = tmp_path / "only.png"
    proc = _cli("report", "drift", "br_monitor", "--static", str(png), "--dsn", drift_db)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == PNG_MAGIC and not (tmp_path / "only.html").exists()
    proc = _cli("report", "drift", "br_monitor", "--dsn", drift_db)
    assert proc.returncode != 0 and "--static" in proc.stderr and "--html" in proc.stderr
    proc = _cli("report", "drift", "no_such_monitor", "--static", str(tmp_path / "x.png"), "--dsn", drift_db)
    assert proc.returncode != 0 and not (tmp_path / "x.png").exists()


def test_static_figure_keeps_every_trace_and_title() -> None:
    import plotly.graph_objects as go
    from pgmlops.report import Section, static_figure

    a = go.Figure([go.Bar(x=["a", "b"], y=[1, 2]), go.Bar(x=["a", "b"], y=[2, 1])])
    a.update_layout(title="first", barmode="group", height=300, yaxis_title="share")
    b = go.Figure([go.Scatter(x=[1, 2, 3], y=[3, 1, 2])])
    b.update_layout(title="second", height=320)
    fig = static_figure("Report T", [Section("one", metrics={"rows": 5}, figures=[a]), Section("two", figures=[b])])
    assert len(fig.data) == 3 and fig.layout.barmode == "group"
    assert [ann.text for ann in fig.layout.annotations] == ["first", "second"]
    assert "Report T" in fig.layout.title.text and "rows: 5" in fig.layout.title.text
    assert fig.layout.yaxis.title.text == "share" and fig.layout.height == 300 + 320 + 140
    empty = static_figure("Nothing", [Section("t", table=[{"a": 1}])])
    assert len(empty.data) == 0 and "no plots" in empty.layout.annotations[-1].text
