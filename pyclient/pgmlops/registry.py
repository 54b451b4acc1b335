"""Model registry: models, versions, aliases, policies, training jobs (wraps mlops.* SQL).

Logic lives in SQL; this module serializes artifacts (pickle for scikit-learn estimators,
JSON for the linear flavor), computes their sha256 so the database verifies it, and turns
results into dataclasses / DataFrames.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .errors import PgmlopsError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .client import Client, Connection

FLAVOR_BY_SUFFIX = {".onnx": "onnx", ".pkl": "sklearn", ".pickle": "sklearn", ".json": "linear"}


@dataclass(frozen=True)
class ModelVersion:
    """One version of a model as returned by ``mlops.get_version``."""

    id: int
    model: str
    version: int
    semver: str | None
    status: str
    flavor: str
    artifact_sha256: str
    artifact_uri: str | None
    metrics: dict[str, float]
    params: dict[str, Any]
    signature: dict[str, Any]
    training_set: str | None
    training_job: int | None
    tags: dict[str, Any]
    aliases: list[str]
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class LinearModel:
    """A linear-flavor artifact: ``intercept + coefficients . x`` (through the logistic link if asked)."""

    coefficients: list[float]
    intercept: float = 0.0
    link: str = "identity"
    features: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"coefficients": [float(c) for c in self.coefficients],
                               "intercept": float(self.intercept), "link": self.link}
        if self.features:
            out["features"] = list(self.features)
        return out

    def predict(self, rows: Sequence[Sequence[float]]) -> list[float]:
        import numpy as np

        x = np.asarray(rows, dtype=np.float64)
        z = x @ np.asarray(self.coefficients, dtype=np.float64) + self.intercept
        if self.link == "logistic":
            z = 1.0 / (1.0 + np.exp(-z))
        return [float(v) for v in z]


def serialize(artifact: Any, flavor: str | None = None) -> tuple[bytes, str, dict[str, Any]]:
    """Artifact bytes, flavor, and a default signature for an estimator, LinearModel, dict, path or bytes."""
    if isinstance(artifact, LinearModel):
        artifact = artifact.to_json()
    if isinstance(artifact, dict):
        return json.dumps(artifact).encode(), flavor or "linear", {}
    if isinstance(artifact, (str, Path)):
        path = Path(artifact)
        if not path.is_file():
            raise PgmlopsError(f"artifact path {str(path)!r} is not a file (argument artifact)")
        guessed = FLAVOR_BY_SUFFIX.get(path.suffix.lower(), "custom")
        return path.read_bytes(), flavor or guessed, {}
    if isinstance(artifact, (bytes, bytearray, memoryview)):
        return bytes(artifact), flavor or "custom", {}
    if hasattr(artifact, "predict"):
        signature: dict[str, Any] = {}
        n_features = getattr(artifact, "n_features_in_", None)
        names = getattr(artifact, "feature_names_in_", None)
        if names is not None:
            signature["inputs"] = [str(n) for n in names]
        elif n_features is not None:
            signature["n_features"] = int(n_features)
        return pickle.dumps(artifact, protocol=pickle.HIGHEST_PROTOCOL), flavor or "sklearn", signature
    raise PgmlopsError(f"cannot store an artifact of type {type(artifact).__name__} (argument artifact): "
                       "give an estimator with predict(), a LinearModel / dict of coefficients, a path or bytes")


def _artifact_args(artifact: Any, flavor: str | None, artifact_uri: str | None,
                   sha256: str | None) -> tuple[bytes | None, str, dict[str, Any], str | None]:
    """(bytes, flavor, default signature, sha256) to send for an artifact, or for an artifact_uri alone
    (nothing stored; its sha256 must be given and the database refuses it otherwise)."""
    if artifact is None:
        return None, flavor or "custom", {}, sha256
    data, flav, signature = serialize(artifact, flavor)
    return data, flav, signature, sha256 or hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ClaimedJob:
    """A training job leased to a worker by ``mlops.claim_training_job``."""

    job: int
    model: str
    config: dict[str, Any]
    attempt: int
    lease_until: datetime
    lease_left: float  # seconds of lease left when claimed (database clock)


# Training-job calls take a connection so that pgmlops.worker (which holds one) and Registry share them.
def claim_training_job(conn: Connection, worker: str, model: str | None = None) -> ClaimedJob | None:
    """Claim the oldest queued job (of ``model``) for ``worker`` (``mlops.claim_training_job``); None when empty."""
    row = conn.cursor(row_factory=dict_row).execute(
        "select c.*, extract(epoch from c.lease_until - pg_catalog.clock_timestamp())::float8 as lease_left "
        "from mlops.claim_training_job(worker => %s::text, model => %s::text) c", [worker, model]).fetchone()
    if row is None:
        return None
    return ClaimedJob(int(row["job"]), str(row["model_name"]), dict(row["config"]), int(row["attempt"]),
                      row["lease_until"], float(row["lease_left"]))


def report_progress(conn: Connection, job: int, progress: float | None = None,
                    metrics: dict[str, float] | None = None, log_line: str | None = None,
                    worker: str | None = None) -> datetime:
    """Record progress / partial metrics / a log line and renew the lease (``mlops.report_progress``);
    returns the new lease end. 55000 (ObjectNotInPrerequisiteState) when the job is no longer running."""
    row = conn.cursor(row_factory=dict_row).execute(
        "select mlops.report_progress(job => %s::bigint, progress => %s::float8, metrics => %s::jsonb, "
        "log_line => %s::text, worker => %s::text) as lease_until",
        [job, progress, Jsonb(metrics) if metrics is not None else None, log_line, worker]).fetchone()
    assert row is not None
    lease_until: datetime = row["lease_until"]
    return lease_until


def complete_training_job(conn: Connection, job: int, artifact: Any = None, *, artifact_uri: str | None = None,
                          sha256: str | None = None, flavor: str | None = None,
                          metrics: dict[str, float] | None = None, params: dict[str, Any] | None = None,
                          signature: dict[str, Any] | None = None, training_set: str | None = None,
                          semver: str = "minor", tags: dict[str, Any] | None = None,
                          worker: str | None = None) -> int:
    """Store the job's result as a new version and mark it succeeded (``mlops.complete_training_job``);
    returns the version number. params default to the job's config."""
    data, flav, default_signature, digest = _artifact_args(artifact, flavor, artifact_uri, sha256)
    row = conn.cursor(row_factory=dict_row).execute(
        "select mlops.complete_training_job(job => %s::bigint, metrics => %s::jsonb, artifact => %s::bytea, "
        "artifact_uri => %s::text, flavor => %s::text, params => %s::jsonb, signature => %s::jsonb, "
        "training_set => %s::text, sha256 => %s::text, semver => %s::text, tags => %s::jsonb, worker => %s::text) as v",
        [job, Jsonb(metrics or {}), data, artifact_uri, flav, Jsonb(params) if params is not None else None,
         Jsonb(signature or default_signature), training_set, digest, semver, Jsonb(tags or {}), worker]).fetchone()
    assert row is not None
    return int(row["v"])


def fail_training_job(conn: Connection, job: int, error: str, worker: str | None = None) -> None:
    """Mark a running job failed with ``error`` (``mlops.fail_training_job``)."""
    conn.execute("select mlops.fail_training_job(job => %s::bigint, error => %s::text, worker => %s::text)",
                 [job, error, worker])


def _jsonable_params(estimator: Any) -> dict[str, Any]:
    get_params = getattr(estimator, "get_params", None)
    if get_params is None:
        return {}
    out: dict[str, Any] = {}
    for key, value in get_params(deep=False).items():
        if value is None or isinstance(value, (bool, int, float, str)):
            out[key] = value
    return out


class Registry:
    """``client.registry``"""

    def __init__(self, client: Client) -> None:
        self.client = client

    def register(self, name: str, task: str = "other", description: str = "", tags: dict[str, Any] | None = None,
                 if_not_exists: bool = False) -> int:
        """Register a model; returns its id."""
        row = self.client.conn.execute(
            "select mlops.register_model(name => %s::text, task => %s::text, description => %s::text, "
            "tags => %s::jsonb, if_not_exists => %s::boolean) as id",
            [name, task, description, Jsonb(tags or {}), if_not_exists]).fetchone()
        assert row is not None
        return int(row["id"])

    def log_version(self, model: str, artifact: Any = None, *, artifact_uri: str | None = None,
                    sha256: str | None = None, flavor: str | None = None,
                    metrics: dict[str, float] | None = None, params: dict[str, Any] | None = None,
                    signature: dict[str, Any] | None = None, training_set: str | None = None,
                    training_job: int | None = None, tags: dict[str, Any] | None = None,
                    semver: str | None = None) -> int:
        """Store a new version (scikit-learn estimator, LinearModel / coefficients dict, path or bytes) with its
        sha256, which the database recomputes and checks, or register an ``artifact_uri`` with its ``sha256``
        (required then: nothing is stored to compute it from); returns the version number."""
        data, flav, default_signature, digest = _artifact_args(artifact, flavor, artifact_uri, sha256)
        if params is None and hasattr(artifact, "get_params"):
            params = _jsonable_params(artifact)
        row = self.client.conn.execute(
            "select mlops.create_model_version(model => %s::text, artifact => %s::bytea, artifact_uri => %s::text, "
            "flavor => %s::text, metrics => %s::jsonb, params => %s::jsonb, signature => %s::jsonb, "
            "training_set => %s::text, training_job => %s::bigint, tags => %s::jsonb, sha256 => %s::text, "
            "semver => %s::text) as v",
            [model, data, artifact_uri, flav, Jsonb(metrics or {}), Jsonb(params or {}),
             Jsonb(signature or default_signature), training_set, training_job, Jsonb(tags or {}), digest,
             semver]).fetchone()
        assert row is not None
        return int(row["v"])

    def set_alias(self, model: str, alias: str, version: int, reason: str | None = None,
                  force: bool = False) -> int | None:
        """Point ``alias`` at ``version`` (checked against its promotion policy); returns the history event id."""
        row = self.client.conn.execute(
            "select mlops.set_alias(model => %s::text, alias => %s::text, version => %s::integer, "
            "reason => %s::text, force => %s::boolean) as e", [model, alias, version, reason, force]).fetchone()
        assert row is not None
        return None if row["e"] is None else int(row["e"])

    def delete_alias(self, model: str, alias: str, reason: str | None = None) -> int:
        row = self.client.conn.execute(
            "select mlops.delete_alias(model => %s::text, alias => %s::text, reason => %s::text) as e",
            [model, alias, reason]).fetchone()
        assert row is not None
        return int(row["e"])

    def rollback(self, model: str, alias: str, reason: str | None = None) -> int:
        """Move ``alias`` back to its previous version; returns the version now under it."""
        row = self.client.conn.execute(
            "select mlops.rollback(model => %s::text, alias => %s::text, reason => %s::text) as v",
            [model, alias, reason]).fetchone()
        assert row is not None
        return int(row["v"])

    def transition_stage(self, model: str, version: int, stage: str, reason: str | None = None,
                         force: bool = False) -> str:
        """Stage view of aliases (staging / production / archived / failed); returns the resulting status."""
        row = self.client.conn.execute(
            "select mlops.transition_stage(model => %s::text, version => %s::integer, stage => %s::text, "
            "reason => %s::text, force => %s::boolean) as s", [model, version, stage, reason, force]).fetchone()
        assert row is not None
        return str(row["s"])

    def set_version_status(self, model: str, version: int, status: str) -> None:
        """Mark a version ``failed`` (refused while it holds an alias) or ``registered`` to clear the mark."""
        self.client.conn.execute(
            "select mlops.set_version_status(model => %s::text, version => %s::integer, status => %s::text)",
            [model, version, status])

    def set_promotion_policy(self, model: str, alias: str, rules: list[dict[str, Any]]) -> None:
        self.client.conn.execute(
            "select mlops.set_promotion_policy(model => %s::text, alias => %s::text, rules => %s::jsonb)",
            [model, alias, Jsonb(rules)])

    def get_version(self, model: str, alias_or_version: str | int = "latest") -> ModelVersion:
        row = self.client.read_conn.execute(
            "select * from mlops.get_version(model => %s::text, alias_or_version => %s::text)",
            [model, str(alias_or_version)]).fetchone()
        assert row is not None
        data = dict(row)
        data["model"] = data.pop("model_name")
        return ModelVersion(**data)

    def compare_versions(self, model: str, version_1: int, version_2: int) -> pd.DataFrame:
        rows = self.client.read_conn.execute(
            "select * from mlops.compare_versions(model => %s::text, version_1 => %s::integer, "
            "version_2 => %s::integer)",
            [model, version_1, version_2]).fetchall()
        return pd.DataFrame(rows, columns=["section", "key", "value_1", "value_2", "delta"])

    def history(self, model: str) -> pd.DataFrame:
        rows = self.client.read_conn.execute(
            "select * from mlops.alias_history where model = %s::text order by event_id", [model]).fetchall()
        return pd.DataFrame(rows)

    def versions(self, model: str) -> pd.DataFrame:
        rows = self.client.read_conn.execute(
            "select * from mlops.model_versions_bi where model = %s::text order by version", [model]).fetchall()
        return pd.DataFrame(rows)

    def load(self, model: str, alias_or_version: str | int = "production") -> Any:
        """The artifact of a version, sha256-checked: an estimator (sklearn), a LinearModel (linear) or bytes."""
        row = self.client.read_conn.execute(
            "select v.flavor, v.artifact, v.artifact_sha256, v.signature from mlops.model_versions v "
            "where v.id = mlops._resolve_version(%s::text, %s::text)", [model, str(alias_or_version)]).fetchone()
        assert row is not None
        data = row["artifact"]
        if data is None:
            raise PgmlopsError(f"{model}/{alias_or_version} is stored by URI; fetch it from there")
        data = bytes(data)
        if hashlib.sha256(data).hexdigest() != row["artifact_sha256"]:
            raise PgmlopsError(f"artifact of {model}/{alias_or_version} does not match its sha256 (corrupted)")
        if row["flavor"] == "sklearn":
            return pickle.loads(data)  # registry artifacts, sha256-checked
        if row["flavor"] == "linear":
            spec = json.loads(data)
            names = row["signature"].get("inputs") or spec.get("features") or []
            return LinearModel([float(c) for c in spec["coefficients"]], float(spec.get("intercept", 0.0)),
                               str(spec.get("link", "identity")), [str(n) for n in names])
        return data

    def _python(self) -> bool:
        row = self.client.conn.execute(
            "select pg_catalog.to_regprocedure('mlops.predict(text,text,float8[])') is not null as p").fetchone()
        return bool(row and row["p"])

    def predict(self, model: str, alias_or_version: str | int, features: Sequence[float]) -> float:
        """Score one row in the database (mlops.predict when pgmlops_python is installed, else mlops.predict_sql)."""
        fn = "mlops.predict" if self._python() else "mlops.predict_sql"
        row = self.client.conn.execute(f"select {fn}(%s::text, %s::text, %s::float8[]) as p",
                                       [model, str(alias_or_version), [float(x) for x in features]]).fetchone()
        assert row is not None
        return float(row["p"])

    def predict_batch(self, model: str, alias_or_version: str | int, rows: Sequence[Sequence[float]]) -> list[float]:
        """Score many rows in one database call."""
        fn = "mlops.predict_batch" if self._python() else "mlops.predict_batch_sql"
        row = self.client.conn.execute(f"select {fn}(%s::text, %s::text, %s::float8[]) as p",
                                       [model, str(alias_or_version), [[float(x) for x in r] for r in rows]]).fetchone()
        assert row is not None
        return [float(v) for v in row["p"]]

    def predict_cache(self, ttl_seconds: float | None = None) -> dict[str, Any]:
        """This connection's in-database result cache for one-row ``predict`` (pgmlops_python): ttl_seconds > 0
        enables it, 0 disables and clears it, None only reports; returns ttl, entries, hits, misses, loaded models."""
        row = self.client.conn.execute("select mlops.predict_cache(ttl_seconds => %s::float8) as c",
                                       [ttl_seconds]).fetchone()
        assert row is not None
        return dict(row["c"])

    def predict_entity(self, model: str, alias_or_version: str | int, entity_key: str | int) -> float:
        """Score one entity from its online features (the version's signature names entity and feature refs)."""
        row = self.client.conn.execute("select mlops.predict_entity(%s::text, %s::text, %s::text) as p",
                                       [model, str(alias_or_version), str(entity_key)]).fetchone()
        assert row is not None
        return float(row["p"])

    def submit_job(self, model: str, config: dict[str, Any] | None = None, lease_seconds: int = 300,
                   max_attempts: int = 3) -> int:
        """Queue a training job for ``pgmlops.worker.run_worker``; returns its id."""
        row = self.client.conn.execute(
            "select mlops.submit_training_job(model => %s::text, config => %s::jsonb, lease_seconds => %s::integer, "
            "max_attempts => %s::integer) as j", [model, Jsonb(config or {}), lease_seconds, max_attempts]).fetchone()
        assert row is not None
        return int(row["j"])

    def cancel_job(self, job: int, reason: str | None = None) -> None:
        self.client.conn.execute("select mlops.cancel_training_job(job => %s::bigint, reason => %s::text)",
                                 [job, reason])

    def jobs(self, model: str | None = None) -> pd.DataFrame:
        rows = self.client.conn.execute(
            "select * from mlops.training_jobs where %s::text is null or model = %s::text order by job_id",
            [model, model]).fetchall()
        return pd.DataFrame(rows)

    def requeue_expired_jobs(self) -> int:
        """Requeue running jobs whose lease expired (out of attempts: failed); returns how many moved."""
        row = self.client.conn.execute("select mlops.requeue_expired_training_jobs() as n").fetchone()
        assert row is not None
        return int(row["n"])

    def claim_job(self, worker: str, model: str | None = None) -> ClaimedJob | None:
        """Lease the oldest queued job (of ``model``) to ``worker``; None when the queue is empty."""
        return claim_training_job(self.client.conn, worker, model)

    def report_progress(self, job: int, progress: float | None = None, metrics: dict[str, float] | None = None,
                        log_line: str | None = None, worker: str | None = None) -> datetime:
        """Progress (0..1), partial metrics and a log line of a running job; renews its lease, returns the new end."""
        return report_progress(self.client.conn, job, progress, metrics, log_line, worker)

    def complete_job(self, job: int, artifact: Any = None, *, artifact_uri: str | None = None,
                     sha256: str | None = None, flavor: str | None = None, metrics: dict[str, float] | None = None,
                     params: dict[str, Any] | None = None, signature: dict[str, Any] | None = None,
                     training_set: str | None = None, semver: str = "minor", tags: dict[str, Any] | None = None,
                     worker: str | None = None) -> int:
        """Store a running job's result as a new version (as ``log_version``) and mark it succeeded."""
        return complete_training_job(self.client.conn, job, artifact, artifact_uri=artifact_uri, sha256=sha256,
                                     flavor=flavor, metrics=metrics, params=params, signature=signature,
                                     training_set=training_set, semver=semver, tags=tags, worker=worker)

    def fail_job(self, job: int, error: str, worker: str | None = None) -> None:
        """Mark a running job failed with ``error`` (no version is created)."""
        fail_training_job(self.client.conn, job, error, worker)
