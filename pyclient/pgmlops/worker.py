"""Training worker: claims jobs from mlops.training_job_queue, reports progress, completes or fails them.

    from pgmlops.worker import TrainingJob, TrainingResult, run_worker

    def train(job: TrainingJob) -> TrainingResult:
        job.progress(0.5, metrics={"loss": 0.3}, log="epoch 1")
        return TrainingResult(artifact=fitted_estimator, metrics={"accuracy": 0.93})

    run_worker(train, dsn, stop_when_empty=True)

A worker that dies stops renewing its lease; the job is requeued when the lease expires
(mlops.claim_training_job requeues expired leases before claiming).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .client import Connection, open_connection, resolve_dsn
from .errors import PgmlopsError
from .registry import claim_training_job, complete_training_job, fail_training_job, report_progress


class LeaseLost(PgmlopsError):
    """The job is no longer running for this worker (its lease expired and it was requeued)."""


@dataclass
class TrainingResult:
    """What a train function returns: the artifact plus metrics (and optional lineage)."""

    artifact: Any
    metrics: dict[str, float] = field(default_factory=dict)
    flavor: str | None = None
    params: dict[str, Any] | None = None
    signature: dict[str, Any] | None = None
    training_set: str | None = None
    semver: str = "minor"


@dataclass
class TrainingJob:
    """A claimed job handed to the train function."""

    id: int
    model: str
    config: dict[str, Any]
    attempt: int
    worker: str
    conn: Connection
    lease_seconds: float = 300.0

    def progress(self, fraction: float | None = None, metrics: dict[str, float] | None = None,
                 log: str | None = None) -> None:
        """Report progress (0..1), partial metrics and a log line; renews the lease. Raises LeaseLost."""
        try:
            report_progress(self.conn, self.id, fraction, metrics, log, self.worker)
        except psycopg.errors.ObjectNotInPrerequisiteState as exc:
            raise LeaseLost(str(exc)) from exc


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(conn: Connection, worker: str, model: str | None = None) -> TrainingJob | None:
    """Claim the next queued job (or None)."""
    claimed = claim_training_job(conn, worker, model)
    if claimed is None:
        return None
    return TrainingJob(claimed.job, claimed.model, claimed.config, claimed.attempt, worker, conn, claimed.lease_left)


def complete(job: TrainingJob, result: TrainingResult) -> int:
    """Store the result as a new model version of the job's model; returns the version number."""
    return complete_training_job(job.conn, job.id, result.artifact, flavor=result.flavor, metrics=result.metrics,
                                 params=result.params, signature=result.signature, training_set=result.training_set,
                                 semver=result.semver, worker=job.worker)


def fail(job: TrainingJob, error: str) -> None:
    fail_training_job(job.conn, job.id, error[:2000] or "failed", job.worker)


class Heartbeat:
    """Renews a job's lease from a second connection while the train function runs, so long steps
    without ``job.progress`` calls do not lose the job. Stops at exit or when the lease is lost."""

    def __init__(self, dsn: str, job: TrainingJob, interval: float) -> None:
        self.dsn, self.job, self.interval = dsn, job, interval
        self.stop = threading.Event()
        self.lost = False
        self.thread = threading.Thread(target=self._run, name=f"pgmlops-heartbeat-{job.id}", daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.wait(self.interval):
                try:
                    report_progress(conn, self.job.id, worker=self.job.worker)
                except psycopg.errors.ObjectNotInPrerequisiteState:
                    self.lost = True
                    return

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def run_worker(train_fn: Callable[[TrainingJob], TrainingResult], dsn: str | None = None, *,
               worker: str | None = None, model: str | None = None, max_jobs: int | None = None,
               stop_when_empty: bool = False, poll_interval: float = 1.0, heartbeat: bool = True) -> int:
    """Claim and run jobs until ``max_jobs`` are done (or the queue is empty with ``stop_when_empty``).
    A train function that raises fails its job; a lost lease abandons it. With ``heartbeat`` a background
    connection renews the lease every third of it while training. Returns how many jobs it finished."""
    name = worker or default_worker_name()
    done = 0
    url = resolve_dsn(dsn)
    with open_connection(url) as conn:
        while max_jobs is None or done < max_jobs:
            job = claim(conn, name, model)
            if job is None:
                if stop_when_empty:
                    break
                time.sleep(poll_interval)
                continue
            try:
                if heartbeat:
                    with Heartbeat(url, job, max(job.lease_seconds / 3.0, 0.2)):
                        result = train_fn(job)
                else:
                    result = train_fn(job)
            except LeaseLost:
                continue
            except Exception as exc:  # any training failure is recorded on the job
                with contextlib.suppress(psycopg.errors.ObjectNotInPrerequisiteState):
                    fail(job, f"{type(exc).__name__}: {exc}")
                done += 1
                continue
            try:
                complete(job, result)
            except psycopg.errors.ObjectNotInPrerequisiteState:
                continue
            done += 1
    return done
