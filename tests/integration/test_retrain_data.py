"""Retrain data assembly on SQLite and PostgreSQL: reference rows + production rows + feedback."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy import Engine, insert

from lifecycle.data import DataSplits
from lifecycle.db import session_factory
from lifecycle.db.feedback import FeedbackStore
from lifecycle.db.schema import PredictionRow
from lifecycle.db.types import utcnow
from retrain.data import UNLABELED, assemble


def test_assembly_labels_feedback_rows_and_holds_some_out_for_validation(
    migrated_engine: Engine, tabular_data: DataSplits
) -> None:
    now = utcnow()
    x = tabular_data.x_test[:60]
    rows = [
        {
            "request_id": f"r{i}",
            "ts": now,
            "model_name": "m",
            "version": "1",
            "role": "champion",
            "features": x[i].tolist(),
            "predicted_class": 0,
            "confidence": 0.9,
            "latency_ms": 1.0,
            "error": None,
        }
        for i in range(60)
    ]
    old = {**rows[0], "request_id": "old", "ts": now - timedelta(days=3)}
    shadow = {**rows[0], "request_id": "s0", "role": "shadow"}
    with migrated_engine.begin() as conn:
        conn.execute(insert(PredictionRow), [*rows, old, shadow])
    sessions = session_factory(migrated_engine)
    store = FeedbackStore(sessions)
    truth = {f"r{i}": int(tabular_data.y_test[i]) for i in range(0, 60, 3)}  # 20 labeled requests
    for rid, label in truth.items():
        store.record("m", rid, label, "test")

    data = assemble(sessions, "m", tabular_data, window=timedelta(days=1), feedback_val_share=0.3, seed=1)
    c = data.counts
    assert c["reference_train"] == len(tabular_data.x_train)
    assert c["feedback_train"] + c["feedback_val"] == 20 and 0 < c["feedback_val"] < 20
    assert (
        c["production"] == 60 - c["feedback_val"]
    )  # held-out rows are not trained on; old and shadow rows are left out
    assert len(data.x) == len(data.y) == c["reference_train"] + c["production"]
    assert len(data.x_val) == len(tabular_data.x_val) + c["feedback_val"]
    prod_y = data.y[c["reference_train"] :]
    assert int(np.sum(prod_y != UNLABELED)) == c["feedback_train"]
    # every label on a production row is the true label of that row
    prod_x = data.x[c["reference_train"] :]
    for row, label in zip(prod_x, prod_y, strict=True):
        if label != UNLABELED:
            i = int(np.flatnonzero((x == row).all(axis=1))[0])
            assert label == truth[f"r{i}"]
    assert data.window_start is not None and data.window_end is not None
