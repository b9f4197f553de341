"""Read one analysis window of a rollout from the prediction log."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.db.schema import PredictionRow
from lifecycle.names import CANARY, CHAMPION, SHADOW
from rollout.analysis import ModelWindow, Pairs, Window
from rollout.machine import Phase, Rollout


class WindowReader:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def read(self, rollout: Rollout, since: datetime) -> Window:
        """Champion requests, challenger requests (mirrored ones in the shadow phase, answered ones in
        a canary step) and the pairs both models saw, logged at or after ``since``."""
        p = PredictionRow
        query = select(
            p.request_id, p.version, p.role, p.predicted_class, p.confidence, p.latency_ms, p.error
        ).where(
            p.model_name == rollout.model,
            p.ts >= since,
            p.version.in_([rollout.champion, rollout.challenger]),
        )
        champion: dict[str, tuple[int, float]] = {}
        champion_latency: list[float] = []
        champion_errors = 0
        mirrored: dict[str, tuple[int, float]] = {}
        answered_latency: list[float] = []
        answered_errors = 0
        shadow_latency: list[float] = []
        shadow_errors = 0
        with self._sessions() as session:
            for request_id, version, role, cls, confidence, latency_ms, error in session.execute(query):
                if version == rollout.champion and role == CHAMPION:
                    if error is None:
                        champion[request_id] = (int(cls or 0), float(confidence or 0.0))
                        champion_latency.append(latency_ms)
                    else:
                        champion_errors += 1
                elif version == rollout.challenger and role == SHADOW:
                    if error is None:
                        mirrored[request_id] = (int(cls or 0), float(confidence or 0.0))
                        shadow_latency.append(latency_ms)
                    else:
                        shadow_errors += 1
                elif version == rollout.challenger and role == CANARY:
                    if error is None:
                        answered_latency.append(latency_ms)
                    else:
                        answered_errors += 1
        paired = [(champion[k], v) for k, v in mirrored.items() if k in champion]
        if rollout.phase is Phase.SHADOW:
            challenger = ModelWindow(np.asarray(shadow_latency, dtype=np.float64), shadow_errors)
        else:
            challenger = ModelWindow(np.asarray(answered_latency, dtype=np.float64), answered_errors)
        return Window(
            ModelWindow(np.asarray(champion_latency, dtype=np.float64), champion_errors),
            challenger,
            Pairs(
                np.asarray([a[0] for a, _ in paired], dtype=np.int64),
                np.asarray([b[0] for _, b in paired], dtype=np.int64),
                np.asarray([a[1] for a, _ in paired], dtype=np.float64),
                np.asarray([b[1] for _, b in paired], dtype=np.float64),
            ),
        )
