"""Reliability suite: reuses the database fixtures of tests/conftest.py.

Tests marked ``slow`` run only with ``--run-slow`` (``make reliability``); the fast part
runs inside ``make test``. Every test here is marked ``reliability``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgmlops.server import LocalServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the slow reliability tests (make reliability)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    run_slow = bool(config.getoption("--run-slow", default=False)) or os.environ.get("PGMLOPS_RUN_SLOW") == "1"
    skip = pytest.mark.skip(reason="slow reliability test: run with make reliability (--run-slow)")
    for item in items:
        if here not in Path(str(item.fspath)).resolve().parents:
            continue
        item.add_marker(pytest.mark.reliability)
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def private_server() -> Iterator[LocalServer]:
    """A cluster of its own (fsync on: crash tests must not share the session cluster)."""
    base = Path(tempfile.mkdtemp(prefix="pgmlops-rel-", dir=os.environ.get("PGMLOPS_TEST_TMP", "/tmp")))
    base.chmod(0o755)
    server = LocalServer(base / "cluster", settings=(("max_connections", "50"), ("shared_buffers", "64MB"),
                                                     ("restart_after_crash", "on")))
    server.start()
    try:
        yield server
    finally:
        server.destroy()
        if base.exists() and not any(base.iterdir()):
            base.rmdir()
