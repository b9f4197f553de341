"""What a retrain learns from: the reference training inputs (with their labels), recent production
inputs (unlabeled: the teacher's outputs are their targets), and labeled feedback on served requests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import torch
from numpy.typing import NDArray
from sqlalchemy import desc, select
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.data import DataSplits
from lifecycle.db.feedback import FeedbackStore
from lifecycle.db.schema import PredictionRow
from lifecycle.db.types import utcnow

UNLABELED = -1


@dataclass(frozen=True)
class RetrainData:
    x: NDArray[np.float32]
    """Training inputs: reference training rows, production rows, feedback rows."""
    y: NDArray[np.int64]
    """True labels, ``-1`` where unknown (production rows without feedback)."""
    x_val: NDArray[np.float32]
    y_val: NDArray[np.int64]
    counts: dict[str, int]
    window_start: datetime | None
    window_end: datetime | None

    @property
    def labeled_share(self) -> float:
        return float(np.mean(self.y >= 0)) if len(self.y) else 0.0


def production_inputs(
    sessions: sessionmaker[Session], model: str, *, since: datetime, limit: int
) -> tuple[NDArray[np.float32], list[str], datetime | None, datetime | None]:
    """The newest ``limit`` inputs the champion answered since ``since`` (with their request ids)."""
    p = PredictionRow
    query = (
        select(p.features, p.request_id, p.ts)
        .where(p.model_name == model, p.role == "champion", p.error.is_(None), p.ts >= since)
        .order_by(desc(p.id))
        .limit(limit)
    )
    with sessions() as session:
        rows = session.execute(query).all()
    if not rows:
        return np.zeros((0, 0), np.float32), [], None, None
    x = np.asarray([r[0] for r in rows], dtype=np.float32)
    return x, [r[1] for r in rows], rows[-1][2], rows[0][2]


def assemble(
    sessions: sessionmaker[Session],
    model: str,
    splits: DataSplits,
    *,
    window: timedelta = timedelta(days=1),
    max_production: int = 20_000,
    feedback_val_share: float = 0.3,
    seed: int = 0,
) -> RetrainData:
    """Reference training rows + production rows + feedback. A share of the feedback is held out and
    added to validation, so early stopping sees the new distribution too."""
    since = utcnow() - window
    x_prod, ids, first, last = production_inputs(sessions, model, since=since, limit=max_production)
    labeled = FeedbackStore(sessions).labeled(model, since=since)
    label_of = dict(zip(labeled.request_ids, labeled.y.tolist(), strict=True))
    rng = np.random.default_rng(seed)
    held_out = {rid for rid in labeled.request_ids if rng.random() < feedback_val_share}
    keep = [i for i, rid in enumerate(ids) if rid not in held_out]
    y_prod = np.asarray([label_of.get(ids[i], UNLABELED) for i in keep], dtype=np.int64)
    val_idx = [i for i, rid in enumerate(labeled.request_ids) if rid in held_out]
    in_window = set(ids)
    # labeled requests older than the production rows taken (``max_production``) still teach
    extra = [i for i, rid in enumerate(labeled.request_ids) if rid not in held_out and rid not in in_window]
    n_features = splits.x_train.shape[1]
    x = np.concatenate(
        [splits.x_train, x_prod[keep].reshape(-1, n_features), labeled.x[extra].reshape(-1, n_features)]
    ).astype(np.float32)
    y = np.concatenate([splits.y_train, y_prod, labeled.y[extra]]).astype(np.int64)
    x_val = np.concatenate([splits.x_val, labeled.x[val_idx].reshape(-1, n_features)]).astype(np.float32)
    y_val = np.concatenate([splits.y_val, labeled.y[val_idx]]).astype(np.int64)
    counts = {
        "reference_train": len(splits.x_train),
        "production": len(keep),
        "feedback_train": int(np.sum(y_prod >= 0)) + len(extra),
        "feedback_val": len(val_idx),
        "validation": len(x_val),
    }
    return RetrainData(x, y, x_val, y_val, counts, first, last)


def with_augmented_production(
    data: RetrainData,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None,
    copies: int,
    seed: int,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The training rows plus ``copies`` augmented copies of each production row (unlabeled: the
    teacher's outputs on them are the targets), so that a student matches the teacher around the new
    inputs and not only on them. No augmentation (tables) or no copies: the rows as they are."""
    n_ref = data.counts["reference_train"]
    production = torch.from_numpy(data.x[n_ref:])
    if augment is None or copies == 0 or len(production) == 0:
        return data.x, data.y
    gen = torch.Generator().manual_seed(seed)
    extra = [augment(production, gen).numpy() for _ in range(copies)]
    x = np.concatenate([data.x, *extra]).astype(np.float32)
    y = np.concatenate([data.y, np.full(len(x) - len(data.x), UNLABELED, dtype=np.int64)])
    return x, y


def pseudo_labels(
    logits: NDArray[np.float32], x: NDArray[np.float32], min_confidence: float
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The rows of ``x`` whose top softmax probability is at least ``min_confidence``, with the
    predicted class as their label."""
    if len(x) == 0:
        return x.reshape(0, *x.shape[1:]), np.zeros(0, np.int64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    sure = probs.max(axis=1) >= min_confidence
    return x[sure], probs[sure].argmax(axis=1).astype(np.int64)
