"""Isolation specs run by pg_isolation_regress (Debian's postgresql-server-dev-15):
exactly-once job claiming and never two alias holders. Expected outputs live in
isolation/expected/ (regenerate with PGMLOPS_UPDATE_EXPECTED=1 after review)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest

HERE = Path(__file__).resolve().parent / "isolation"
REGRESS = Path("/usr/lib/postgresql/15/lib/pgxs/src/test/isolation/pg_isolation_regress")
SPECS = sorted(p.stem for p in (HERE / "specs").glob("*.spec"))
NEEDS = {"job-claim": "mlops.claim_training_job(text,text)",
         "alias-move": "mlops.set_alias(text,text,integer,text,boolean)"}


@pytest.mark.parametrize("spec", SPECS)
def test_isolation_spec(spec: str, database_factory: Callable[..., str], tmp_path: Path) -> None:
    assert REGRESS.exists(), f"{REGRESS} missing: run scripts/install-system-deps.sh (postgresql-client-15)"
    url = database_factory("extension", prefix=f"iso_{spec.replace('-', '_')}")
    with psycopg.connect(url, autocommit=True) as conn:
        needed = NEEDS.get(spec)
        if needed:
            exists = conn.execute("select pg_catalog.to_regprocedure(%s::text) is not null", (needed,)).fetchone()
            assert exists == (True,), f"{needed} does not exist: the {spec} spec tests nothing"
    u = urlparse(url)
    q = parse_qs(u.query)
    out = tmp_path / "out"
    out.mkdir()
    expected = HERE / "expected" / f"{spec}.out"
    if os.environ.get("PGMLOPS_UPDATE_EXPECTED") == "1" or not expected.exists():
        expected.parent.mkdir(exist_ok=True)
        expected.write_text("")
    proc = subprocess.run([str(REGRESS), "--use-existing", f"--host={q['host'][0]}", f"--port={q['port'][0]}",
                           "--user=postgres", f"--dbname={u.path.lstrip('/')}", f"--inputdir={HERE}",
                           f"--outputdir={out}", spec], capture_output=True, text=True, check=False, cwd=tmp_path)
    result = out / "results" / f"{spec}.out"
    if os.environ.get("PGMLOPS_UPDATE_EXPECTED") == "1" and result.exists():
        shutil.copy(result, expected)
        return
    diffs = out / "regression.diffs"
    assert proc.returncode == 0, (diffs.read_text() if diffs.exists() else "") + proc.stdout + proc.stderr
