"""Named leases in the database: one control-plane leader, one retrain at a time.

Portable across SQLite and PostgreSQL: an INSERT claims a free name; an UPDATE guarded by
``expires_at < now OR owner = me`` takes over an expired lease or renews our own. The database's
row-level atomicity guarantees that two contenders never both see a row count of one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.db.schema import LockRow
from lifecycle.db.types import utcnow


class Locks:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def acquire(self, name: str, owner: str, ttl_s: float, now: datetime | None = None) -> bool:
        """Take or renew the lease ``name`` for ``owner``; False when another owner holds it unexpired."""
        if ttl_s <= 0:
            raise ValueError(f"lock ttl must be positive, got {ttl_s}")
        now = now or utcnow()
        expires = now + timedelta(seconds=ttl_s)
        try:
            with self._sessions.begin() as session:
                session.add(LockRow(name=name, owner=owner, acquired_at=now, expires_at=expires))
            return True
        except IntegrityError:
            pass
        with self._sessions.begin() as session:
            result = session.execute(
                update(LockRow)
                .where(LockRow.name == name, (LockRow.expires_at < now) | (LockRow.owner == owner))
                .values(owner=owner, acquired_at=now, expires_at=expires)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def release(self, name: str, owner: str) -> bool:
        """Give the lease back; False when ``owner`` did not hold it."""
        with self._sessions.begin() as session:
            result = session.execute(delete(LockRow).where(LockRow.name == name, LockRow.owner == owner))
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def holder(self, name: str, now: datetime | None = None) -> str | None:
        """The owner of an unexpired lease on ``name``, or None."""
        now = now or utcnow()
        with self._sessions() as session:
            row = session.scalars(select(LockRow).where(LockRow.name == name)).first()
            if row is None or row.expires_at < now:
                return None
            return row.owner
