"""What a model answered, in a few numbers per item, for every task: the prediction log keeps these,
monitoring and rollout analysis read them back. Pure numpy.

| task | columns | ``summary`` |
|---|---|---|
| classification | class, confidence (softmax of logits) | none |
| regression | — | ``{"values": [...]}``: each target |
| embedding | — | ``{"norm": ‖v‖, "projection": [16 numbers]}``: the pooled vector, L2-normalised, times a fixed Gaussian matrix (seed 0, d × 16, scaled by 1/√16: distances kept in expectation, Johnson–Lindenstrauss) |
| detection | confidence: the best box's score | ``{"boxes": k, "scores": [...], "classes": [...], "areas": [...]}``: the decoded boxes after NMS, best first, at most 20; areas in the input's pixels² |
| tensors | — | ``{"mean", "std", "min", "max"}`` of the primary output |
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.boxes import decode
from lifecycle.contract import ModelContract
from lifecycle.evaluate import pooled

PROJECTION_DIMS = 16
PROJECTION_SEED = 0
MAX_BOXES_LOGGED = 20

Arrays = Mapping[str, NDArray[Any]]


@dataclass(frozen=True)
class ItemAnswers:
    """Per item of one model call: class and confidence (classifiers; a detector's best score), and
    the task's summary. Each list is None when the task has no such value."""

    classes: list[int] | None = None
    confidences: list[float] | None = None
    summaries: list[dict[str, Any]] | None = None


def summarize(contract: ModelContract, inputs: Arrays, outputs: Arrays) -> ItemAnswers:
    """:raises KeyError, ValueError: outputs that do not fit the contract (checked before)."""
    primary = np.asarray(outputs[contract.primary_output])
    n = len(primary)
    if contract.task == "classification":
        scores = np.asarray(primary, dtype=np.float64).reshape(n, -1)
        if contract.scores == "logits":
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores /= scores.sum(axis=1, keepdims=True)
        return ItemAnswers(scores.argmax(axis=1).tolist(), scores.max(axis=1).tolist())
    if contract.task == "regression":
        values = np.asarray(primary, dtype=np.float64).reshape(n, -1)
        return ItemAnswers(summaries=[{"values": _floats(row)} for row in values])
    if contract.task == "embedding":
        return ItemAnswers(summaries=_embeddings(pooled(contract, outputs, inputs)))
    if contract.task == "detection":
        assert contract.detection is not None
        found = decode(outputs, contract.primary_output, contract.detection)
        summaries = []
        for boxes in found:
            order = np.argsort(-boxes.scores)[:MAX_BOXES_LOGGED]
            xyxy = boxes.xyxy[order].astype(np.float64)
            areas = np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None) * np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None)
            summaries.append({
                "boxes": len(boxes),
                "scores": _floats(boxes.scores[order]),
                "classes": boxes.classes[order].astype(int).tolist(),
                "areas": _floats(areas),
            })  # fmt: skip
        best = [float(s["scores"][0] or 0.0) if s["scores"] else 0.0 for s in summaries]
        return ItemAnswers(confidences=best, summaries=summaries)
    flat = np.asarray(primary, dtype=np.float64).reshape(n, -1)
    return ItemAnswers(
        summaries=[
            {
                "mean": _float(row.mean()),
                "std": _float(row.std()),
                "min": _float(row.min()),
                "max": _float(row.max()),
            }
            for row in flat
        ]
    )


def _embeddings(vectors: NDArray[np.float32]) -> list[dict[str, Any]]:
    v = vectors.astype(np.float64)
    norms = np.linalg.norm(v, axis=1)
    unit = v / np.clip(norms[:, None], 1e-12, None)
    projected = unit @ projection(v.shape[1])
    return [
        {"norm": _float(norm), "projection": _floats(row)} for norm, row in zip(norms, projected, strict=True)
    ]


@functools.cache
def projection(dims: int) -> NDArray[np.float64]:
    """The fixed random projection of ``dims``-long vectors to :data:`PROJECTION_DIMS` (seed 0)."""
    rng = np.random.default_rng(PROJECTION_SEED)
    return rng.standard_normal((dims, PROJECTION_DIMS)) / math.sqrt(PROJECTION_DIMS)


def _float(value: float) -> float | None:
    """A JSON-safe number rounded to 6 significant digits; None for NaN and infinities (which JSON
    and PostgreSQL refuse)."""
    v = float(value)
    return float(f"{v:.6g}") if math.isfinite(v) else None


def _floats(values: NDArray[Any]) -> list[float | None]:
    return [_float(v) for v in np.asarray(values).tolist()]
