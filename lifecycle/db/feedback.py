"""True labels for served requests, sent by clients after the fact (ground truth for retraining)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.db.schema import FeedbackRow, PredictionRow
from lifecycle.db.types import utcnow
from lifecycle.labels import Label


@dataclass(frozen=True)
class LabeledRows:
    x: NDArray[np.float32]
    y: NDArray[np.int64]
    request_ids: list[str]


class FeedbackStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(
        self, model: str, request_id: str, label: int | Label, source: str, ts: datetime | None = None
    ) -> None:
        """Keep a true label: a class index, or any task's checked :class:`Label`."""
        checked = Label(index=label) if isinstance(label, int) else label
        with self._sessions.begin() as session:
            session.add(
                FeedbackRow(
                    ts=ts or utcnow(), model_name=model, request_id=request_id, label=checked.index,
                    target=checked.target, source=source,
                )
            )  # fmt: skip

    def labeled(self, model: str, since: datetime | None = None) -> LabeledRows:
        """Logged inputs with their latest true label (requests answered by the champion)."""
        f, p = FeedbackRow, PredictionRow
        query = (
            select(p.request_id, p.features, f.label, f.id)
            .join(f, (f.request_id == p.request_id) & (f.model_name == p.model_name))
            .where(p.model_name == model, p.role == "champion", f.label.is_not(None))
            .order_by(f.id)
        )
        if since is not None:
            query = query.where(p.ts >= since)
        latest: dict[str, tuple[list[float], int]] = {}
        with self._sessions() as session:
            for request_id, features, label, _ in session.execute(query):
                if label is not None:  # a class (the query asks only for those)
                    latest[request_id] = (features, label)  # a later label for the same request wins
        ids = list(latest)
        x = np.asarray([latest[i][0] for i in ids], dtype=np.float32)
        return LabeledRows(
            x.reshape(len(ids), -1) if ids else np.zeros((0, 0), dtype=np.float32),  # none yet: no width
            np.asarray([latest[i][1] for i in ids], dtype=np.int64),
            ids,
        )
