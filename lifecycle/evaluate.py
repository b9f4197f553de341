"""The task's metric for any model, labels optional. Pure numpy.

With labels: top-1 (and top-5 over more than 5 classes), RMSE and MAE, mAP@0.5. Without them every
metric is fidelity to the FP32 reference outputs: top-1 agreement, RMSE to the reference, mean cosine
and top-10 neighbour overlap of embeddings, IoU-matched box agreement, the largest absolute error.
The evaluation names the metric it used, and whether higher is better.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle import boxes as box_ops
from lifecycle.contract import ModelContract
from lifecycle.samples import Samples

Arrays = Mapping[str, NDArray[Any]]
NEIGHBOURS = 10


@dataclass(frozen=True)
class Evaluation:
    metric: str
    """The task metric the gates judge: accuracy, agreement, rmse, rmse_to_reference, cosine,
    map50, box_agreement or max_abs_error."""
    value: float
    higher_is_better: bool
    metrics: dict[str, float] = field(default_factory=dict)
    """Every figure computed (the metric included); ``scale`` where a gate judges the metric
    relative to the reference outputs (their standard deviation, or largest magnitude)."""

    @property
    def fidelity(self) -> float | None:
        """Agreement with the reference by the task's measure (top-1 agreement, cosine, box
        agreement); ``None`` for regression and generic tensors, judged by error instead."""
        for key in ("agreement", "cosine", "box_agreement"):
            if key in self.metrics:
                return self.metrics[key]
        return None


def evaluate(
    contract: ModelContract, outputs: Arrays, samples: Samples, reference: Arrays | None = None
) -> Evaluation:
    """Judge ``outputs`` (the model's answers on ``samples``) by the contract's task.

    ``reference``: the FP32 parent's outputs on the same samples; without labels the metric is
    fidelity to it (a model compared with itself scores perfectly)."""
    reference = reference if reference is not None else outputs
    judge = {
        "classification": _classification,
        "regression": _regression,
        "embedding": _embedding,
        "detection": _detection,
        "tensors": _tensors,
    }[contract.task]
    return judge(contract, outputs, samples, reference)


def scores_of(contract: ModelContract, outputs: Arrays) -> NDArray[np.float32]:
    return np.asarray(outputs[contract.primary_output], dtype=np.float32)


def _classification(
    contract: ModelContract, outputs: Arrays, samples: Samples, reference: Arrays
) -> Evaluation:
    scores, ref = scores_of(contract, outputs), scores_of(contract, reference)
    top1 = scores.argmax(1)
    metrics = {
        "agreement": float((top1 == ref.argmax(1)).mean()),
        "max_abs_diff": float(np.abs(scores - ref).max()) if scores.size else 0.0,
    }
    if samples.y is None:
        return Evaluation("agreement", metrics["agreement"], True, metrics)
    y = samples.y.astype(np.int64)
    metrics["accuracy"] = float((top1 == y).mean())
    if contract.n_classes > 5:
        top5 = np.argsort(-scores, axis=1)[:, :5]
        metrics["top5_accuracy"] = float((top5 == y[:, None]).any(1).mean())
    return Evaluation("accuracy", metrics["accuracy"], True, metrics)


def _regression(contract: ModelContract, outputs: Arrays, samples: Samples, reference: Arrays) -> Evaluation:
    pred = _as_2d(scores_of(contract, outputs))
    ref = _as_2d(scores_of(contract, reference))
    metrics = {
        "rmse_to_reference": _rmse(pred, ref),
        "max_abs_diff": float(np.abs(pred - ref).max()),
        "scale": float(ref.std()),
    }
    if samples.y is None:
        return Evaluation("rmse_to_reference", metrics["rmse_to_reference"], False, metrics)
    y = _as_2d(samples.y.astype(np.float32))
    metrics["rmse"] = _rmse(pred, y)
    metrics["mae"] = float(np.abs(pred - y).mean())
    return Evaluation("rmse", metrics["rmse"], False, metrics)


def _embedding(contract: ModelContract, outputs: Arrays, samples: Samples, reference: Arrays) -> Evaluation:
    vectors = pooled(contract, outputs, samples.inputs)
    ref = pooled(contract, reference, samples.inputs)
    cos = _cosine_rows(vectors, ref)
    metrics = {
        "cosine": float(cos.mean()),
        "min_cosine": float(cos.min()),
        "neighbour_overlap": neighbour_overlap(vectors, ref),
    }
    return Evaluation("cosine", metrics["cosine"], True, metrics)


def _detection(contract: ModelContract, outputs: Arrays, samples: Samples, reference: Arrays) -> Evaluation:
    assert contract.detection is not None
    found = box_ops.decode(outputs, contract.primary_output, contract.detection)
    ref = box_ops.decode(reference, contract.primary_output, contract.detection)
    metrics = {
        "box_agreement": box_ops.agreement(found, ref),
        "boxes_per_item": float(np.mean([len(b) for b in found])) if found else 0.0,
    }
    if not samples.has_boxes:
        return Evaluation("box_agreement", metrics["box_agreement"], True, metrics)
    truth = [samples.boxes_of(i) for i in range(len(samples))]
    metrics["map50"] = box_ops.mean_average_precision(found, truth)
    return Evaluation("map50", metrics["map50"], True, metrics)


def _tensors(contract: ModelContract, outputs: Arrays, samples: Samples, reference: Arrays) -> Evaluation:
    errors = {
        name: float(
            np.abs(np.asarray(outputs[name], np.float64) - np.asarray(reference[name], np.float64)).max()
        )
        for name in contract.output_names
        if np.asarray(outputs[name]).size
    }
    worst = max(errors.values(), default=0.0)
    return Evaluation(
        "max_abs_error",
        worst,
        False,
        {"max_abs_error": worst, **{f"max_abs_error.{k}": v for k, v in errors.items()}},
    )


def pooled(contract: ModelContract, outputs: Arrays, inputs: Arrays) -> NDArray[np.float32]:
    """One vector per item, as the contract's pooling says."""
    states = np.asarray(outputs[contract.primary_output], dtype=np.float32)
    pooling = contract.pooling
    if pooling is None or pooling.method == "none":
        vectors = states
    elif pooling.method == "cls":
        vectors = states[:, 0]
    else:
        if pooling.mask is None:
            vectors = states.mean(1)
        else:
            mask = np.asarray(inputs[pooling.mask], dtype=np.float32)[..., None]
            vectors = (states * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
    if pooling is not None and pooling.normalize:
        vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    return vectors.astype(np.float32)


def neighbour_overlap(a: NDArray[np.float32], b: NDArray[np.float32], k: int = NEIGHBOURS) -> float:
    """Mean share of each item's top-``k`` cosine neighbours (itself excluded) that ``a`` and ``b`` share."""
    n = len(a)
    k = min(k, n - 1)
    if k < 1:
        return 1.0

    def top(v: NDArray[np.float32]) -> NDArray[np.intp]:
        unit = v / np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)
        sim = unit @ unit.T
        np.fill_diagonal(sim, -np.inf)
        return np.argsort(-sim, axis=1, kind="stable")[:, :k]

    ta, tb = top(a), top(b)
    return float(np.mean([len(np.intersect1d(x, y)) / k for x, y in zip(ta, tb, strict=True)]))


def _cosine_rows(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float64]:
    num = (a.astype(np.float64) * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(den > 0, num / np.clip(den, 1e-12, None), 1.0)


def _as_2d(x: NDArray[Any]) -> NDArray[np.float32]:
    arr = np.asarray(x, dtype=np.float32)
    return arr[:, None] if arr.ndim == 1 else arr


def _rmse(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b) ** 2)))
