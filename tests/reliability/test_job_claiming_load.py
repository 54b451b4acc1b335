"""Exactly-once job claiming under load (issue 10, item 8): 4 worker processes run
pgmlops.worker.run_worker over thousands of training jobs while a supervisor SIGKILLs a random
worker every few hundred milliseconds and starts a new one. A killed worker's job is
reclaimed when its (1 s) lease expires. Goal: every job completed exactly once (one model
version per job, the job succeeded and points at it), and the reclaimed jobs ran again as
attempt >= 2 (the kills did land mid-job)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from . import jobworker
from .test_crash import record

WORKERS = 4
MODELS = 4


def submit(url: str, jobs: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for m in range(MODELS):
            conn.execute("select mlops.register_model(name => %s::text)", (f"job_model_{m}",))
        conn.execute("""select mlops.submit_training_job(model => 'job_model_' || (i %% %s)::text,
                                                         config => pg_catalog.jsonb_build_object('i', i),
                                                         lease_seconds => 1, max_attempts => 1000)
                          from pg_catalog.generate_series(1, %s) i""", (MODELS, jobs))


def outcome(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    status = dict(conn.execute("select status, count(*) from mlops.training_job_queue group by 1").fetchall())
    versions = Counter(dict(conn.execute("select training_job, count(*) from mlops.model_versions "
                                         "where training_job is not null group by 1").fetchall()))
    linked = conn.execute("""select count(*) from mlops.training_job_queue q join mlops.model_versions v
                               on v.id = q.version_id and v.training_job = q.id
                              where q.status = 'succeeded'""").fetchone()
    attempts = dict(conn.execute("select attempts, count(*) from mlops.training_job_queue group by 1").fetchall())
    return {"status": status, "versions": versions, "linked": linked[0] if linked else 0, "attempts": attempts}


def run_load(url: str, tmp_path: Path, jobs: int, kills_wanted: int, timeout: float) -> dict[str, Any]:
    """Runs WORKERS workers until every job finished; SIGKILLs a working worker (one that has
    logged a start) at random points spread over the run (about ``kills_wanted`` of them)."""
    submit(url, jobs)
    ctx = multiprocessing.get_context("spawn")
    log = tmp_path / "starts.log"
    log.touch()
    rng = random.Random(20261123)
    seq = 0

    def spawn() -> BaseProcess:
        nonlocal seq
        seq += 1
        p = ctx.Process(target=jobworker.work, args=(url, str(log), seq), daemon=True)
        p.start()
        return p

    procs = [spawn() for _ in range(WORKERS)]
    kills = restarts = 0
    gap = max(jobs // (kills_wanted + 1), 1)
    next_kill = rng.randint(gap // 2, gap + gap // 2)
    started = time.monotonic()
    try:
        with psycopg.connect(url, autocommit=True) as conn, log.open() as starts:
            working: set[str] = set()
            while time.monotonic() - started < timeout:
                working.update(line.rstrip("\n").rsplit("\t", 1)[-1] for line in starts.readlines())
                row = conn.execute("select count(*) from mlops.training_job_queue "
                                   "where status not in ('queued', 'running')").fetchone()
                done = row[0] if row else 0
                if done >= jobs:
                    break
                if done >= next_kill:
                    busy = [p for p in procs if p.pid is not None and p.is_alive() and f"relw_{p.pid}" in working]
                    if busy:
                        victim = rng.choice(busy)
                        assert victim.pid is not None
                        os.kill(victim.pid, signal.SIGKILL)
                        kills += 1
                        next_kill = done + rng.randint(gap // 2, gap + gap // 2)
                for i, p in enumerate(procs):
                    if not p.is_alive():
                        p.join()
                        procs[i] = spawn()
                        restarts += 1
                time.sleep(0.02)
            seconds = time.monotonic() - started
            figures = outcome(conn)
    finally:
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
            p.join(10)
    lines = [line.split("\t") for line in log.read_text().splitlines() if line.count("\t") == 3]
    reran = {s[1] for s in lines if int(s[2]) >= 2}
    versions: Counter[int] = figures["versions"]
    return {"jobs": jobs, "workers": WORKERS, "kills": kills, "restarts": restarts, "seconds": round(seconds, 1),
            "status": figures["status"], "completed_once": sum(1 for n in versions.values() if n == 1),
            "completed_twice_or_more": sum(1 for n in versions.values() if n > 1),
            "never_completed": jobs - len(versions), "linked": figures["linked"],
            "jobs_reclaimed": len(reran), "max_attempt": max(int(s[2]) for s in lines) if lines else 0,
            "starts": len(lines)}


def check(figures: dict[str, Any]) -> None:
    jobs = figures["jobs"]
    assert figures["status"] == {"succeeded": jobs}, figures
    assert (figures["completed_once"], figures["completed_twice_or_more"], figures["never_completed"]) == (jobs, 0, 0)
    assert figures["linked"] == jobs
    assert figures["kills"] > 0 and figures["jobs_reclaimed"] > 0, "no kill landed mid-job: the test proved nothing"


def test_exactly_once_with_killed_workers_fast(database_factory: Callable[..., str], tmp_path: Path) -> None:
    url = database_factory("extension", prefix="jobs_fast")
    figures = run_load(url, tmp_path, jobs=400, kills_wanted=4, timeout=240)
    record("job_claiming_fast", **figures)
    check(figures)


@pytest.mark.slow
def test_exactly_once_with_killed_workers_5000(database_factory: Callable[..., str], tmp_path: Path) -> None:
    url = database_factory("extension", prefix="jobs_slow")
    figures = run_load(url, tmp_path, jobs=int(os.environ.get("PGMLOPS_JOBS", "5000")), kills_wanted=40,
                       timeout=900)
    record("job_claiming_5000", **figures)
    check(figures)


def test_check_detects_a_double_completion(database_factory: Callable[..., str]) -> None:
    """The verdict can fail: a job with two versions (completed twice) is reported."""
    url = database_factory("extension", prefix="jobs_check")
    submit(url, 2)
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(2):
            row = conn.execute("select job from mlops.claim_training_job(worker => 'w')").fetchone()
            assert row is not None
            conn.execute("select mlops.complete_training_job(job => %s::bigint, worker => 'w', artifact => 'a'::bytea)",
                         (row[0],))
        conn.execute("select mlops.create_model_version(model => 'job_model_1', training_job => 2, "
                     "artifact => 'b'::bytea)")
        figures = outcome(conn)
    assert figures["versions"] == Counter({1: 1, 2: 2})
    with pytest.raises(AssertionError):
        check({"jobs": 2, "status": figures["status"], "completed_once": 1, "completed_twice_or_more": 1,
               "never_completed": 0, "linked": figures["linked"], "kills": 1, "jobs_reclaimed": 1})
