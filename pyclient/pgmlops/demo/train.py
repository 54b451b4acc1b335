"""The demo's training function: logistic regression by Newton's method in numpy.

Small, dependency-free and exact enough to show the loop: the worker claims a job, reads
the point-in-time training set named in its config, fits, reports progress and returns a
linear-flavor artifact that the database can score in plain SQL.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..registry import LinearModel
from ..worker import TrainingJob, TrainingResult


def fit_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 12, l2: float = 1e-3) -> tuple[np.ndarray, float]:
    """Coefficients and intercept maximizing the L2-penalized log-likelihood."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-xb @ w))
        grad = xb.T @ (p - y) + l2 * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + l2 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w[1:], float(w[0])


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    ranks = pd.Series(score).rank().to_numpy()
    pos = y.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def train(job: TrainingJob) -> TrainingResult:
    """Fit on the job's training set (config: training_set table, features, label)."""
    cfg: dict[str, Any] = job.config
    features: list[str] = list(cfg["features"])
    cols = ", ".join(f'"{f}"' for f in features)
    rows = job.conn.execute(f'select {cols}, "{cfg["label"]}"::int as y from {cfg["training_set"]}').fetchall()
    frame = pd.DataFrame(rows).dropna()
    x = frame[features].to_numpy(dtype=float)
    y = frame["y"].to_numpy(dtype=float)
    split = int(len(frame) * 0.8)
    job.progress(0.2, log=f"{len(frame)} rows, {len(features)} features")
    coef, intercept = fit_logistic(x[:split], y[:split])
    job.progress(0.8, metrics={"train_rows": float(split)}, log="fitted")
    score = 1 / (1 + np.exp(-(x[split:] @ coef + intercept)))
    metrics = {"auc": round(auc(y[split:], score), 4),
               "accuracy": round(float(((score > 0.5) == y[split:]).mean()), 4)}
    model = LinearModel(coefficients=[float(c) for c in coef], intercept=intercept, link="logistic",
                        features=features)
    return TrainingResult(artifact=model, metrics=metrics, params={"features": features, "l2": 1e-3},
                          signature={"inputs": features}, training_set=cfg["training_set"])
