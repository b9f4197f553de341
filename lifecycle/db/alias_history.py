"""Which version held which alias, from when to when, set and cleared by whom."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.db.schema import AliasHistoryRow
from lifecycle.db.types import utcnow


@dataclass(frozen=True)
class AliasInterval:
    model_name: str
    alias: str
    version: str
    set_at: datetime
    set_by: str
    cleared_at: datetime | None
    cleared_by: str | None

    @property
    def current(self) -> bool:
        return self.cleared_at is None


class AliasHistory:
    """Append-only record of alias assignments; at most one open interval per (model, alias)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record_set(
        self, model_name: str, alias: str, version: str, actor: str, at: datetime | None = None
    ) -> None:
        """Close the open interval of ``alias`` (if another version held it) and open one for ``version``.

        Setting an alias to the version that already holds it records nothing.
        """
        when = at or utcnow()
        with self._sessions.begin() as session:
            open_row = self._open_row(session, model_name, alias)
            if open_row is not None and open_row.version == version:
                return
            if open_row is not None:
                open_row.cleared_at = when
                open_row.cleared_by = actor
            session.add(
                AliasHistoryRow(
                    model_name=model_name, alias=alias, version=version, set_at=when, set_by=actor
                )
            )

    def record_deleted(self, model_name: str, alias: str, actor: str, at: datetime | None = None) -> None:
        """Close the open interval of ``alias``; a no-op when none is open."""
        with self._sessions.begin() as session:
            session.execute(
                update(AliasHistoryRow)
                .where(
                    AliasHistoryRow.model_name == model_name,
                    AliasHistoryRow.alias == alias,
                    AliasHistoryRow.cleared_at.is_(None),
                )
                .values(cleared_at=at or utcnow(), cleared_by=actor)
            )

    def reconcile(self, model_name: str, current: dict[str, str], actor: str) -> None:
        """Bring the history in line with aliases observed in the registry (changes made elsewhere)."""
        for alias, version in current.items():
            self.record_set(model_name, alias, version, actor)
        for interval in self.current(model_name):
            if interval.alias not in current:
                self.record_deleted(model_name, interval.alias, actor)

    def current(self, model_name: str) -> list[AliasInterval]:
        with self._sessions() as session:
            rows = session.scalars(
                select(AliasHistoryRow)
                .where(AliasHistoryRow.model_name == model_name, AliasHistoryRow.cleared_at.is_(None))
                .order_by(AliasHistoryRow.alias)
            ).all()
            return [_interval(row) for row in rows]

    def history(self, model_name: str, alias: str | None = None) -> list[AliasInterval]:
        """Intervals oldest first."""
        query = select(AliasHistoryRow).where(AliasHistoryRow.model_name == model_name)
        if alias is not None:
            query = query.where(AliasHistoryRow.alias == alias)
        with self._sessions() as session:
            rows = session.scalars(query.order_by(AliasHistoryRow.set_at, AliasHistoryRow.id)).all()
            return [_interval(row) for row in rows]

    @staticmethod
    def _open_row(session: Session, model_name: str, alias: str) -> AliasHistoryRow | None:
        return session.scalars(
            select(AliasHistoryRow)
            .where(
                AliasHistoryRow.model_name == model_name,
                AliasHistoryRow.alias == alias,
                AliasHistoryRow.cleared_at.is_(None),
            )
            .with_for_update()
        ).first()


def _interval(row: AliasHistoryRow) -> AliasInterval:
    return AliasInterval(
        model_name=row.model_name,
        alias=row.alias,
        version=row.version,
        set_at=row.set_at,
        set_by=row.set_by,
        cleared_at=row.cleared_at,
        cleared_by=row.cleared_by,
    )
