"""The traffic plan of a model's active rollout: what each serving replica reads to route requests.
The rollout controller writes the rows (``rollout.store``); serving only reads them, here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import desc, select
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.db.schema import RolloutRow
from lifecycle.names import ACTIVE_PHASES


@dataclass(frozen=True)
class TrafficPlan:
    """What a serving replica needs to route: which challenger, and how much traffic it gets."""

    rollout_id: int
    challenger: str
    canary_weight: float
    mirror_share: float


class TrafficPlans:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def plan(self, model: str) -> TrafficPlan | None:
        """The active rollout's traffic for ``model`` (one indexed query: serving polls it)."""
        with self._sessions() as session:
            row = session.execute(
                select(
                    RolloutRow.id, RolloutRow.challenger, RolloutRow.canary_weight, RolloutRow.mirror_share
                )
                .where(RolloutRow.model_name == model, RolloutRow.phase.in_(ACTIVE_PHASES))
                .order_by(desc(RolloutRow.id))
                .limit(1)
            ).first()
            return None if row is None else TrafficPlan(row[0], row[1], row[2], row[3])
