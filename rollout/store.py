"""Rollouts and their verdicts in the database, written by the rollout controller (serving reads
the traffic plan through ``lifecycle.db.traffic``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import desc, select
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.db.schema import RolloutRow, VerdictRow
from lifecycle.names import ACTIVE_PHASES
from rollout.analysis import Verdict
from rollout.machine import Phase, Rollout
from rollout.policy import RolloutPolicy


@dataclass(frozen=True)
class StoredVerdict:
    ts: datetime
    phase: str
    step: int
    canary_weight: float
    outcome: str
    checks: list[dict[str, object]]
    samples: dict[str, int]
    decision: str


class RolloutStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def save(self, rollout: Rollout) -> Rollout:
        """Insert a new rollout or update an existing one; returns it with its id."""
        values = {
            "model_name": rollout.model,
            "champion": rollout.champion,
            "challenger": rollout.challenger,
            "phase": rollout.phase.value,
            "step": rollout.step,
            "failures": rollout.failures,
            "paused": rollout.paused,
            "canary_weight": rollout.canary_weight,
            "mirror_share": rollout.mirror_share,
            "started_at": rollout.started_at,
            "step_started_at": rollout.step_started_at,
            "updated_at": rollout.updated_at,
            "started_by": rollout.started_by,
            "reason": rollout.reason,
            "policy": rollout.policy.model_dump(mode="json"),
        }
        with self._sessions.begin() as session:
            if rollout.id is None:
                row = RolloutRow(**values)
                session.add(row)
                session.flush()
                return _to_rollout(row)
            row = session.get_one(RolloutRow, rollout.id)
            for key, value in values.items():
                setattr(row, key, value)
            return _to_rollout(row)

    def get(self, rollout_id: int) -> Rollout | None:
        with self._sessions() as session:
            row = session.get(RolloutRow, rollout_id)
            return None if row is None else _to_rollout(row)

    def active(self, model: str) -> Rollout | None:
        with self._sessions() as session:
            row = session.scalars(
                select(RolloutRow)
                .where(RolloutRow.model_name == model, RolloutRow.phase.in_(ACTIVE_PHASES))
                .order_by(desc(RolloutRow.id))
            ).first()
            return None if row is None else _to_rollout(row)

    def all_active(self) -> list[Rollout]:
        with self._sessions() as session:
            rows = session.scalars(select(RolloutRow).where(RolloutRow.phase.in_(ACTIVE_PHASES)))
            return [_to_rollout(row) for row in rows]

    def history(self, model: str | None = None, limit: int = 20) -> list[Rollout]:
        query = select(RolloutRow).order_by(desc(RolloutRow.id)).limit(limit)
        if model is not None:
            query = query.where(RolloutRow.model_name == model)
        with self._sessions() as session:
            return [_to_rollout(row) for row in session.scalars(query)]

    def add_verdict(self, rollout: Rollout, verdict: Verdict, decision: str, ts: datetime) -> None:
        assert rollout.id is not None, "save the rollout before recording its verdicts"
        data = verdict.to_json()
        with self._sessions.begin() as session:
            session.add(
                VerdictRow(
                    rollout_id=rollout.id,
                    ts=ts,
                    phase=rollout.phase.value,
                    step=rollout.step,
                    canary_weight=rollout.canary_weight,
                    outcome=verdict.outcome.value,
                    checks=data["checks"],
                    samples=data["samples"],
                    decision=decision,
                )
            )

    def verdicts(self, rollout_id: int, limit: int = 10) -> list[StoredVerdict]:
        """The newest verdicts of a rollout, newest first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(VerdictRow)
                .where(VerdictRow.rollout_id == rollout_id)
                .order_by(desc(VerdictRow.id))
                .limit(limit)
            )
            return [
                StoredVerdict(
                    r.ts, r.phase, r.step, r.canary_weight, r.outcome, r.checks, r.samples, r.decision
                )
                for r in rows
            ]


def _to_rollout(row: RolloutRow) -> Rollout:
    return Rollout(
        model=row.model_name,
        champion=row.champion,
        challenger=row.challenger,
        phase=Phase(row.phase),
        step=row.step,
        failures=row.failures,
        paused=row.paused,
        step_started_at=row.step_started_at,
        started_at=row.started_at,
        updated_at=row.updated_at,
        policy=RolloutPolicy.model_validate(row.policy),
        reason=row.reason,
        started_by=row.started_by,
        id=row.id,
    )
