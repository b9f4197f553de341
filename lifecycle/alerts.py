"""Alerts: severity, de-duplication with a cool-down, storage of every alert, and delivery channels
that can fail without breaking whoever raised the alert (each failure is retried, then recorded)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import desc, select
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.db.schema import AlertRow
from lifecycle.db.types import utcnow
from lifecycle.names import Severity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    source: str
    """What raised it: ``rollout``, ``drift``, ``retrain``."""
    severity: Severity
    key: str
    """De-duplication key, e.g. ``rollout:digits:v7``."""
    title: str
    message: str
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredAlert:
    id: int
    ts: datetime
    alert: Alert
    deliveries: dict[str, object]
    suppressed: bool


class Channel(Protocol):
    name: str

    def send(self, alert: Alert) -> None:
        """Deliver one alert. :raises Exception: on failure (the alerter retries and records it)."""


class LogChannel:
    name = "log"

    def send(self, alert: Alert) -> None:
        level = logging.ERROR if alert.severity is Severity.CRITICAL else logging.WARNING
        log.log(level, "ALERT [%s] %s: %s", alert.severity.value, alert.title, alert.message)


class Alerter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        channels: Sequence[Channel] | None = None,
        *,
        cooldown_s: float = 600.0,
        retries: int = 2,
        retry_delay_s: float = 0.5,
    ) -> None:
        self._sessions = sessions
        self._channels = list(channels) if channels is not None else [LogChannel()]
        self._cooldown = timedelta(seconds=cooldown_s)
        self._retries = retries
        self._retry_delay_s = retry_delay_s

    def raise_alert(self, alert: Alert, now: datetime | None = None) -> StoredAlert:
        """Store the alert; deliver it unless an alert with the same key was delivered within the
        cool-down. Never raises because a channel failed."""
        now = now or utcnow()
        suppressed = self._recently_sent(alert.key, now)
        deliveries: dict[str, object] = {}
        if not suppressed:
            for channel in self._channels:
                deliveries[channel.name] = self._deliver(channel, alert)
        with self._sessions.begin() as session:
            row = AlertRow(
                ts=now,
                source=alert.source,
                severity=alert.severity.value,
                key=alert.key,
                title=alert.title,
                message=alert.message,
                details=dict(alert.details),
                deliveries=deliveries,
                suppressed=suppressed,
            )
            session.add(row)
            session.flush()
            return StoredAlert(row.id, now, alert, deliveries, suppressed)

    def recent(self, limit: int = 50, source: str | None = None) -> list[StoredAlert]:
        query = select(AlertRow).order_by(desc(AlertRow.id)).limit(limit)
        if source is not None:
            query = query.where(AlertRow.source == source)
        with self._sessions() as session:
            return [
                StoredAlert(
                    r.id,
                    r.ts,
                    Alert(r.source, Severity(r.severity), r.key, r.title, r.message, r.details),
                    r.deliveries,
                    r.suppressed,
                )
                for r in session.scalars(query)
            ]

    def _recently_sent(self, key: str, now: datetime) -> bool:
        with self._sessions() as session:
            row = session.scalars(
                select(AlertRow.id).where(
                    AlertRow.key == key, AlertRow.suppressed.is_(False), AlertRow.ts > now - self._cooldown
                )
            ).first()
            return row is not None

    def _deliver(self, channel: Channel, alert: Alert) -> dict[str, object]:
        errors: list[str] = []
        for attempt in range(self._retries + 1):
            try:
                channel.send(alert)
                return {"ok": True, "attempts": attempt + 1}
            except Exception as exc:  # a channel must never break the caller
                errors.append(f"{type(exc).__name__}: {exc}")
                log.warning("alert channel %s failed (attempt %d): %s", channel.name, attempt + 1, exc)
                if attempt < self._retries:
                    time.sleep(self._retry_delay_s * (2**attempt))
        return {"ok": False, "attempts": self._retries + 1, "errors": errors}
