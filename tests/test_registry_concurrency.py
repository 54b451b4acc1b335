"""Registry under concurrency: racing promotions, gap-free version numbers, the training-job
queue with several workers, lease expiry of a killed worker."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import psycopg
import pytest
from pgmlops.registry import LinearModel
from pgmlops.worker import LeaseLost, TrainingJob, TrainingResult, claim, run_worker

Conn = psycopg.Connection[Any]
ART = b'{"coefficients": [1.0], "intercept": 0}'


def run_threads(n: int, target: Any) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def wrapped(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # collected and asserted by the caller
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_eight_connections_racing_production(dsn: str, conn: Conn) -> None:
    conn.execute("select mlops.register_model('race_m', 'regression')")
    for _ in range(8):
        conn.execute("select mlops.create_model_version('race_m', %s::bytea, flavor => 'linear')", [ART])

    def promote(i: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(
                "select mlops.set_alias('race_m', 'production', %s::integer, reason => %s::text)", [i + 1, f"racer {i}"]
            )

    assert run_threads(8, promote) == []
    aliases = conn.execute(
        "select a.version_id from mlops.model_aliases a join mlops.models m on m.id = a.model_id "
        "where m.name = 'race_m' and a.alias = 'production'"
    ).fetchall()
    assert len(aliases) == 1
    hist = conn.execute(
        "select from_version, to_version from mlops.alias_history "
        "where model = 'race_m' and alias = 'production' order by event_id"
    ).fetchall()
    assert len(hist) == 8 and sorted(t for _, t in hist) == list(range(1, 9))
    assert hist[0][0] is None
    assert all(hist[k][0] == hist[k - 1][1] for k in range(1, 8)), hist  # a chain: nobody lost an update
    winner = conn.execute("select version from mlops.get_version('race_m', 'production')").fetchone()
    assert winner == (hist[-1][1],)
    stages = Counter(s for (s,) in conn.execute("select status from mlops.model_versions_bi where model = 'race_m'"))
    assert stages == {"production": 1, "archived": 7}


def test_version_numbers_gap_free_under_concurrency(dsn: str, conn: Conn) -> None:
    conn.execute("select mlops.register_model('gap_m', 'regression')")

    def create(i: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as c:
            for k in range(10):
                if k == 5 and i % 2 == 0:  # a failing insert must not burn a number
                    with pytest.raises(psycopg.errors.InvalidParameterValue):
                        c.execute(
                            "select mlops.create_model_version('gap_m', %s::bytea, flavor => 'linear', "
                            "sha256 => %s::text)",
                            [ART, "0" * 64],
                        )
                c.execute("select mlops.create_model_version('gap_m', %s::bytea, flavor => 'linear')", [ART])

    assert run_threads(8, create) == []
    versions = [
        v for (v,) in conn.execute("select version from mlops.model_versions_bi where model = 'gap_m' order by version")
    ]
    assert versions == list(range(1, 81))


def test_four_workers_do_each_job_once(dsn: str, conn: Conn) -> None:
    conn.execute("select mlops.register_model('queue_m', 'regression')")
    jobs = [
        j
        for (j,) in conn.execute(
            "select mlops.submit_training_job('queue_m', pg_catalog.jsonb_build_object('i', g)) "
            "from pg_catalog.generate_series(1, 400) g"
        )
    ]
    seen: list[int] = []
    lock = threading.Lock()

    def train(job: TrainingJob) -> TrainingResult:
        with lock:
            seen.append(job.id)
        if job.config["i"] % 50 == 0:
            job.progress(0.5, metrics={"loss": 1.0}, log="half way")
        if job.config["i"] == 13:
            raise ValueError("unlucky")
        return TrainingResult(LinearModel([float(job.config["i"])]), metrics={"r2": 0.5})

    done: dict[int, int] = {}

    def work(i: int) -> None:
        done[i] = run_worker(train, dsn, worker=f"w{i}", model="queue_m", stop_when_empty=True)

    assert run_threads(4, work) == []
    assert sorted(seen) == sorted(jobs)  # each job handed out exactly once
    assert sum(done.values()) == 400
    status = dict(
        conn.execute(
            "select status, pg_catalog.count(*) from mlops.training_jobs where model = 'queue_m' group by 1"
        ).fetchall()
    )
    assert status == {"succeeded": 399, "failed": 1}
    assert conn.execute(
        "select error from mlops.training_jobs where model = 'queue_m' and status = 'failed'"
    ).fetchone() == ("ValueError: unlucky",)
    assert conn.execute(
        "select pg_catalog.max(attempts) from mlops.training_jobs where model = 'queue_m'"
    ).fetchone() == (1,)
    # every succeeded job made exactly one version, linked both ways, numbers gap-free
    rows = conn.execute(
        "select j.job_id, j.version, v.training_job, v.params::jsonb = q.config from mlops.training_jobs j "
        "join mlops.model_versions_bi v on v.model = j.model and v.version = j.version "
        "join mlops.training_job_queue q on q.id = j.job_id where j.model = 'queue_m'"
    ).fetchall()
    assert len(rows) == 399 and all(job == lineage and same for job, _, lineage, same in rows)
    assert sorted(v for _, v, _, _ in rows) == list(range(1, 400))
    assert conn.execute(
        "select pg_catalog.count(*) from mlops.training_job_logs where line = 'half way'"
    ).fetchone() == (8,)


def test_killed_worker_job_is_requeued_after_lease(dsn: str, conn: Conn) -> None:
    conn.execute("select mlops.register_model('lease_m', 'regression')")
    job_id = conn.execute(
        "select mlops.submit_training_job('lease_m', '{}', lease_seconds => 1, max_attempts => 2)"
    ).fetchone()
    assert job_id is not None
    dead = psycopg.connect(dsn, autocommit=True, row_factory=psycopg.rows.dict_row)
    job = claim(dead, "doomed", "lease_m")
    assert job is not None and job.id == job_id[0] and job.attempt == 1
    pid = dead.info.backend_pid
    conn.execute("select pg_catalog.pg_terminate_backend(%s::integer)", [pid])  # the worker dies mid-training
    dead.close()
    # nothing else can claim it while the lease runs
    with psycopg.connect(dsn, autocommit=True, row_factory=psycopg.rows.dict_row) as other:
        assert claim(other, "eager", "lease_m") is None
    time.sleep(1.3)
    with psycopg.connect(dsn, autocommit=True, row_factory=psycopg.rows.dict_row) as c2:
        zombie = claim(c2, "rescuer", "lease_m")
        assert zombie is not None and zombie.id == job_id[0] and zombie.attempt == 2
        late = TrainingJob(job.id, job.model, job.config, job.attempt, "doomed", c2)
        with pytest.raises(LeaseLost):
            late.progress(0.9)
        zombie.progress(0.5, log="resumed")
    # the rescuer dies too: out of attempts, the job fails instead of looping forever
    conn.execute(
        "update mlops.training_job_queue set lease_until = pg_catalog.now() - interval '1 second' "
        "where id = %s::bigint",
        [job_id[0]],
    )
    assert conn.execute("select mlops.requeue_expired_training_jobs()").fetchone() == (1,)
    row = conn.execute(
        "select status, attempts, error from mlops.training_jobs where job_id = %s::bigint", [job_id[0]]
    ).fetchone()
    assert row is not None and row[0] == "failed" and row[1] == 2 and "lease expired" in row[2]


def test_job_bad_input(conn: Conn) -> None:
    conn.execute("select mlops.register_model('jobs_bad', 'regression')")
    j = conn.execute("select mlops.submit_training_job('jobs_bad')").fetchone()
    assert j is not None
    for query, state in (
        ("select mlops.submit_training_job('nope')", "P0002"),
        ("select mlops.submit_training_job('jobs_bad', '[1]')", "22023"),
        ("select mlops.submit_training_job('jobs_bad', lease_seconds => 0)", "22023"),
        ("select * from mlops.claim_training_job('')", "22023"),
        (f"select mlops.report_progress({j[0]}, 0.5)", "55000"),
        (f"select mlops.complete_training_job({j[0]}, artifact => '\\x00'::bytea)", "55000"),
        ("select mlops.report_progress(999999, 0.5)", "P0002"),
    ):
        with pytest.raises(psycopg.Error) as err:
            conn.execute(query)
        assert err.value.diag.sqlstate == state, query
    conn.execute("select * from mlops.claim_training_job('w', 'jobs_bad')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="argument progress"):
        conn.execute(f"select mlops.report_progress({j[0]}, 1.5)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="argument artifact"):
        conn.execute(f"select mlops.complete_training_job({j[0]}, artifact => 'x'::bytea, flavor => 'linear')")
    assert conn.execute(f"select status from mlops.training_job_queue where id = {j[0]}").fetchone() == ("running",)
    conn.execute(f"select mlops.cancel_training_job({j[0]}, 'no longer needed')")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="cancelled"):
        conn.execute(f"select mlops.report_progress({j[0]}, 0.7, worker => 'w')")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="already cancelled"):
        conn.execute(f"select mlops.cancel_training_job({j[0]})")


def test_heartbeat_keeps_a_long_job(dsn: str, conn: Conn) -> None:
    conn.execute("select mlops.register_model('beat_m', 'regression')")
    job_id = conn.execute("select mlops.submit_training_job('beat_m', '{}', lease_seconds => 1)").fetchone()
    assert job_id is not None
    stolen: list[Any] = []

    def slow(job: TrainingJob) -> TrainingResult:
        time.sleep(2.5)  # longer than the lease, no progress calls: only the heartbeat renews it
        with psycopg.connect(dsn, autocommit=True, row_factory=psycopg.rows.dict_row) as other:
            stolen.append(claim(other, "thief", "beat_m"))
        return TrainingResult(LinearModel([1.0]))

    assert run_worker(slow, dsn, worker="steady", model="beat_m", stop_when_empty=True) == 1
    assert stolen == [None]
    row = conn.execute("select status, attempts, worker from mlops.training_jobs where job_id = %s::bigint",
                       [job_id[0]]).fetchone()
    assert row == ("succeeded", 1, "steady")
