"""Retrain jobs in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import desc, select
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.db.schema import RetrainJobRow
from lifecycle.db.types import utcnow


@dataclass(frozen=True)
class RetrainJob:
    id: int
    model: str
    trigger: str
    trigger_ref: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    champion_version: str | None
    teacher_version: str | None
    challenger_version: str | None
    counts: dict[str, Any]
    metrics: dict[str, Any]
    error: str | None
    run_id: str | None


class RetrainJobs:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(self, model: str, trigger: str, trigger_ref: str, status: str = "running") -> int:
        with self._sessions.begin() as session:
            row = RetrainJobRow(
                model_name=model, trigger=trigger, trigger_ref=trigger_ref[:256], status=status,
                started_at=utcnow(), counts={}, metrics={},
            )  # fmt: skip
            session.add(row)
            session.flush()
            return row.id

    def update(self, job_id: int, **values: Any) -> RetrainJob:
        with self._sessions.begin() as session:
            row = session.get_one(RetrainJobRow, job_id)
            for key, value in values.items():
                setattr(row, key, value)
            return _to_job(row)

    def history(self, model: str | None = None, limit: int = 20) -> list[RetrainJob]:
        query = select(RetrainJobRow).order_by(desc(RetrainJobRow.id)).limit(limit)
        if model is not None:
            query = query.where(RetrainJobRow.model_name == model)
        with self._sessions() as session:
            return [_to_job(r) for r in session.scalars(query)]

    def last_success(self, model: str) -> RetrainJob | None:
        query = (
            select(RetrainJobRow)
            .where(RetrainJobRow.model_name == model, RetrainJobRow.status == "succeeded")
            .order_by(desc(RetrainJobRow.id))
            .limit(1)
        )
        with self._sessions() as session:
            row = session.scalars(query).first()
            return None if row is None else _to_job(row)


def _to_job(r: RetrainJobRow) -> RetrainJob:
    return RetrainJob(
        r.id, r.model_name, r.trigger, r.trigger_ref, r.status, r.started_at, r.finished_at,
        r.champion_version, r.teacher_version, r.challenger_version, dict(r.counts), dict(r.metrics),
        r.error, r.mlflow_run_id,
    )  # fmt: skip
