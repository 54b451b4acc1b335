"""A training worker process for the exactly-once load test: pgmlops.worker.run_worker with a
tiny train function that logs each start (job, attempt, worker) before sleeping a few ms, so a
SIGKILL lands mid-job most of the time."""

from __future__ import annotations

import os
import random
import time

from pgmlops.worker import TrainingJob, TrainingResult, run_worker


def work(url: str, log_path: str, seed: int) -> None:
    rng = random.Random(seed)
    name = f"relw_{os.getpid()}"
    with open(log_path, "a", buffering=1) as log:

        def train(job: TrainingJob) -> TrainingResult:
            log.write(f"start\t{job.id}\t{job.attempt}\t{name}\n")
            time.sleep(rng.uniform(0.001, 0.01))
            return TrainingResult(artifact=f"job {job.id}".encode(), metrics={"attempt": float(job.attempt)})

        run_worker(train, url, worker=name, heartbeat=False, poll_interval=0.05)
