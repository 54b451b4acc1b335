"""Typed SQLAlchemy 2.0 declarations of pgmlops' tables and BI views, for users' own apps.

Declarations are written out (no reflection), so importing this module touches no
database. They live on their own ``MetaData`` (schema ``mlops``): pgmlops creates and
migrates these objects itself (``pgmlops.install`` / alembic revisions in
``migrations/versions``), so never pass :data:`metadata` to ``create_all`` or to
alembic autogenerate. Link your own tables to them with foreign keys, or query them::

    from sqlalchemy import select
    from pgmlops.sqlalchemy import Model, ModelVersion

    stmt = select(Model.name, ModelVersion.version).join(ModelVersion.model)

BI views are mapped read-only (:class:`AlertLog`). Vector columns use pgvector's
SQLAlchemy type :class:`pgvector.sqlalchemy.Vector`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pgvector.sqlalchemy import Vector
from sqlalchemy import BigInteger, Boolean, Double, ForeignKey, Integer, LargeBinary, MetaData, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import DateTime

SCHEMA = "mlops"
TZ = DateTime(timezone=True)

__all__ = [
    "SCHEMA",
    "Alert",
    "AlertLog",
    "Base",
    "DriftSummary",
    "EmbeddingCache",
    "ExperimentAssignmentsDaily",
    "FeatureFreshness",
    "Model",
    "ModelAlias",
    "ModelPerformanceHourly",
    "ModelVersion",
    "Prediction",
    "PredictionFeedback",
    "PredictionOutcome",
    "metadata",
    "tables",
    "views",
]


class Base(DeclarativeBase):
    """Declarative base of every pgmlops mapping (schema ``mlops``)."""

    metadata = MetaData(schema=SCHEMA)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONB, datetime: TZ, float: Double,
                                                     bytes: LargeBinary}


metadata = Base.metadata


class Alert(Base):
    """mlops.alerts: alerts raised by every capability."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    created_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    resolved_at: Mapped[datetime | None]


class Model(Base):
    """mlops.models: registered models."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    task: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    tags: Mapped[dict[str, Any]]
    next_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(Text)
    versions: Mapped[list[ModelVersion]] = relationship(back_populates="model", viewonly=True)
    aliases: Mapped[list[ModelAlias]] = relationship(viewonly=True)


class ModelVersion(Base):
    """mlops.model_versions: immutable model versions."""

    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    model_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("mlops.models.id"))
    version: Mapped[int] = mapped_column(Integer)
    semver: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    flavor: Mapped[str] = mapped_column(Text)
    artifact: Mapped[bytes | None]
    artifact_uri: Mapped[str | None] = mapped_column(Text)
    artifact_sha256: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]]
    params: Mapped[dict[str, Any]]
    signature: Mapped[dict[str, Any]]
    training_set: Mapped[str | None] = mapped_column(Text)
    training_job: Mapped[int | None] = mapped_column(BigInteger)
    tags: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(Text)
    model: Mapped[Model] = relationship(back_populates="versions", viewonly=True)


class ModelAlias(Base):
    """mlops.model_aliases: alias -> version (move aliases with mlops.set_alias / promote, not by UPDATE)."""

    __tablename__ = "model_aliases"
    model_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("mlops.models.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(Text, primary_key=True)
    version_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("mlops.model_versions.id"))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(Text)
    version: Mapped[ModelVersion] = relationship(viewonly=True)


class Prediction(Base):
    """mlops.predictions: the prediction log (partitioned by created_at; write through mlops.log_predictions)."""

    __tablename__ = "predictions"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    request_id: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    model_version: Mapped[int] = mapped_column(Integer)
    model_version_id: Mapped[int] = mapped_column(BigInteger)
    alias: Mapped[str | None] = mapped_column(Text)
    experiment: Mapped[str | None] = mapped_column(Text)
    variant: Mapped[str | None] = mapped_column(Text)
    unit_id: Mapped[str | None] = mapped_column(Text)
    features: Mapped[dict[str, Any] | None]
    feature_vector: Mapped[Any | None] = mapped_column(Vector())
    output: Mapped[dict[str, Any] | None]
    score: Mapped[float | None]
    label: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None]
    latency_ms: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, primary_key=True)


class PredictionFeedback(Base):
    """mlops.prediction_feedback: ground truth per request_id."""

    __tablename__ = "prediction_feedback"
    request_id: Mapped[str] = mapped_column(Text, primary_key=True)
    actual: Mapped[dict[str, Any] | None]
    label: Mapped[str | None] = mapped_column(Text)
    value: Mapped[float | None]
    correct: Mapped[bool | None] = mapped_column(Boolean)
    reward: Mapped[float | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EmbeddingCache(Base):
    """mlops.embedding_cache: embeddings keyed by model version and text sha256."""

    __tablename__ = "embedding_cache"
    model_version_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("mlops.model_versions.id"),
                                                  primary_key=True)
    content_sha256: Mapped[str] = mapped_column(Text, primary_key=True)
    embedding: Mapped[Any] = mapped_column(Vector())
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class AlertLog(Base):
    """mlops.alert_log (BI view, read-only): one row per alert."""

    __tablename__ = "alert_log"
    __table_args__ = {"info": {"is_view": True}}  # noqa: RUF012
    time: Mapped[datetime]
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    is_open: Mapped[bool] = mapped_column(Boolean)


VIEW: dict[str, Any] = {"info": {"is_view": True}}


class ModelPerformanceHourly(Base):
    """mlops.model_performance_hourly (BI view): per model version and hour, counts, error rate,
    latency percentiles, accuracy."""

    __tablename__ = "model_performance_hourly"
    __table_args__ = VIEW
    time: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    model: Mapped[str] = mapped_column(Text, primary_key=True)
    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    predictions: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    error_rate: Mapped[float | None]
    latency_p50: Mapped[float | None]
    latency_p95: Mapped[float | None]
    latency_p99: Mapped[float | None]
    mean_confidence: Mapped[float | None]
    feedback_count: Mapped[int] = mapped_column(BigInteger)
    accuracy: Mapped[float | None]
    mae: Mapped[float | None]


class PredictionOutcome(Base):
    """mlops.prediction_outcomes (BI view): one row per prediction with its feedback."""

    __tablename__ = "prediction_outcomes"
    __table_args__ = VIEW
    time: Mapped[datetime]
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    request_id: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    model_version: Mapped[int] = mapped_column(Integer)
    alias: Mapped[str | None] = mapped_column(Text)
    experiment: Mapped[str | None] = mapped_column(Text)
    variant: Mapped[str | None] = mapped_column(Text)
    unit_id: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None]
    label: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None]
    latency_ms: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    is_error: Mapped[bool] = mapped_column(Boolean)
    feedback_at: Mapped[datetime | None]
    actual_label: Mapped[str | None] = mapped_column(Text)
    actual_value: Mapped[float | None]
    correct: Mapped[bool | None] = mapped_column(Boolean)
    reward: Mapped[float | None]
    abs_error: Mapped[float | None]


class DriftSummary(Base):
    """mlops.drift_summary (BI view): one row per drift statistic of every monitor run."""

    __tablename__ = "drift_summary"
    __table_args__ = VIEW
    time: Mapped[datetime]
    monitor: Mapped[str] = mapped_column(Text)
    profile: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    column_name: Mapped[str] = mapped_column(Text, primary_key=True)
    column_type: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text, primary_key=True)
    statistic: Mapped[float | None]
    p_value: Mapped[float | None]
    threshold: Mapped[float | None]
    drifted: Mapped[bool] = mapped_column(Boolean)
    share_drifted: Mapped[float]
    dataset_drift: Mapped[bool] = mapped_column(Boolean)
    reference_rows: Mapped[int] = mapped_column(BigInteger)
    current_rows: Mapped[int] = mapped_column(BigInteger)


class FeatureFreshness(Base):
    """mlops.feature_freshness (BI view): freshness of every current feature group."""

    __tablename__ = "feature_freshness"
    __table_args__ = VIEW
    time: Mapped[datetime]
    group_name: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    newest_event: Mapped[datetime | None]
    lag_seconds: Mapped[float | None]
    sla_seconds: Mapped[float | None]
    is_stale: Mapped[bool] = mapped_column(Boolean)


class ExperimentAssignmentsDaily(Base):
    """mlops.experiment_assignments_daily (BI view): units entering each variant per day."""

    __tablename__ = "experiment_assignments_daily"
    __table_args__ = VIEW
    time: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    experiment: Mapped[str] = mapped_column(Text, primary_key=True)
    variant: Mapped[str] = mapped_column(Text, primary_key=True)
    new_units: Mapped[int] = mapped_column(BigInteger)


def tables() -> list[str]:
    """Qualified names of the mapped tables."""
    return sorted(t.fullname for t in metadata.sorted_tables if not t.info.get("is_view"))


def views() -> list[str]:
    """Qualified names of the mapped BI views."""
    return sorted(t.fullname for t in metadata.sorted_tables if t.info.get("is_view"))
