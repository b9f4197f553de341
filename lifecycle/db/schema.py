"""SQLAlchemy models. Every change here comes with an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lifecycle.db.types import UTCDateTime

# Deterministic constraint names keep migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AliasHistoryRow(Base):
    """One interval during which ``version`` held ``alias`` of ``model_name``."""

    __tablename__ = "alias_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(256))
    alias: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())
    set_by: Mapped[str] = mapped_column(String(256))
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cleared_by: Mapped[str | None] = mapped_column(String(256), nullable=True)

    __table_args__ = (Index("ix_alias_history_model_alias", "model_name", "alias", "cleared_at"),)


class LockRow(Base):
    """A named lease: at most one owner holds ``name`` until ``expires_at``."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str] = mapped_column(String(256))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PredictionRow(Base):
    """One served prediction: what came in, what went out, who answered, how fast."""

    __tablename__ = "prediction_log"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    request_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    model_name: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(32))
    features: Mapped[list[float]] = mapped_column(JSON)
    predicted_class: Mapped[int | None] = mapped_column(Integer, nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """What the model answered, for tasks without a class (``lifecycle.answers``)."""
    inputs_ref: Mapped[str | None] = mapped_column(String(512), nullable=True)
    """Where the item's sampled input tensors are kept (``lifecycle.input_store``); None when not
    sampled, and for tabular models, whose input is ``features``."""

    __table_args__ = (
        Index("ix_prediction_log_model_ts", "model_name", "ts"),
        Index("ix_prediction_log_request_id", "request_id"),
    )


class RolloutRow(Base):
    """One rollout of a challenger version: where it is, and the traffic serving must give it.

    The control plane is the only writer; serving replicas read ``canary_weight`` and
    ``mirror_share`` of the active row of their model.
    """

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(256))
    champion: Mapped[str] = mapped_column(String(32))
    challenger: Mapped[str] = mapped_column(String(32))
    phase: Mapped[str] = mapped_column(String(32))
    step: Mapped[int] = mapped_column(Integer)
    failures: Mapped[int] = mapped_column(Integer)
    paused: Mapped[bool] = mapped_column(Boolean)
    canary_weight: Mapped[float] = mapped_column(Float)
    mirror_share: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    step_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_by: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text)
    policy: Mapped[dict[str, object]] = mapped_column(JSON)

    __table_args__ = (Index("ix_rollouts_model_phase", "model_name", "phase"),)


class VerdictRow(Base):
    """One analysis of one rollout step: statistics, sample sizes, thresholds and the decision."""

    __tablename__ = "rollout_verdicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    phase: Mapped[str] = mapped_column(String(32))
    step: Mapped[int] = mapped_column(Integer)
    canary_weight: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(32))
    checks: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    samples: Mapped[dict[str, int]] = mapped_column(JSON)
    decision: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_rollout_verdicts_rollout", "rollout_id", "ts"),)


class AlertRow(Base):
    """Every alert raised, with where it was delivered (or why not)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(256))
    """De-duplication key: alerts with the same key inside the cool-down are suppressed."""
    title: Mapped[str] = mapped_column(String(512))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, object]] = mapped_column(JSON)
    deliveries: Mapped[dict[str, object]] = mapped_column(JSON)
    suppressed: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (Index("ix_alerts_key_ts", "key", "ts"),)


class DriftCheckRow(Base):
    """One scheduled (or manual) drift check of a served model: window, verdict, statistics."""

    __tablename__ = "drift_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    model_name: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(32))
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    n_reference: Mapped[int] = mapped_column(Integer)
    n_current: Mapped[int] = mapped_column(Integer)
    drift: Mapped[bool] = mapped_column(Boolean)
    severity: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    detectors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    seconds: Mapped[float] = mapped_column(Float)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checked_by: Mapped[str] = mapped_column(String(256))
    """The process that ran the check (scheduler leader, or the CLI)."""

    __table_args__ = (Index("ix_drift_checks_model_ts", "model_name", "ts"),)


class FeedbackRow(Base):
    """A true label for a served request, sent later by the client (ground truth for retraining)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    model_name: Mapped[str] = mapped_column(String(256))
    request_id: Mapped[str] = mapped_column(String(64))
    label: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """A classifier's label: the class index in the model's contract."""
    target: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """Another task's label (``lifecycle.labels``): a regressor's values, a detector's boxes."""
    source: Mapped[str] = mapped_column(String(256))

    __table_args__ = (Index("ix_feedback_model_request", "model_name", "request_id"),)


class RetrainJobRow(Base):
    """One retrain: what triggered it, what it learned from, what it registered, or why it failed."""

    __tablename__ = "retrain_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(256))
    trigger: Mapped[str] = mapped_column(String(64))
    """``manual``, ``drift`` or ``schedule``."""
    trigger_ref: Mapped[str] = mapped_column(String(256))
    """The drift check's MLflow run id, the cron expression, or who asked."""
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    champion_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    teacher_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    challenger_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (Index("ix_retrain_jobs_model_started", "model_name", "started_at"),)
