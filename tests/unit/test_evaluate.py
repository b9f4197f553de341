from __future__ import annotations

import numpy as np
import pytest

from lifecycle import boxes
from lifecycle.contract import Detection, ModelContract, Pooling, TensorSpec
from lifecycle.evaluate import evaluate, neighbour_overlap, pooled
from lifecycle.samples import Samples

IMAGE = TensorSpec("images", "float32", ("batch", 3, 8, 8))
YOLO = ModelContract(
    inputs=(IMAGE,),
    outputs=(TensorSpec("output0", "float32", ("batch", 6, "anchors")),),
    task="detection",
    detection=Detection(score_threshold=0.3, iou_threshold=0.5),
)


def _head(rows: list[tuple[float, float, float, float, float, float]]) -> np.ndarray:
    """One item's anchors as (cx, cy, w, h, score class 0, score class 1) → (1, 6, anchors)."""
    return np.array(rows, dtype=np.float32).T[None]


def test_yolov8_decoding_thresholds_and_suppresses_per_class() -> None:
    head = _head([
        (10, 10, 4, 4, 0.9, 0.0),
        (10.5, 10, 4, 4, 0.8, 0.0),  # overlaps the first, same class: suppressed
        (10, 10, 4, 4, 0.0, 0.7),  # same place, other class: kept
        (30, 30, 2, 2, 0.1, 0.2),  # below the score threshold
    ])  # fmt: skip
    (found,) = boxes.decode_yolov8(head, YOLO.detection)  # type: ignore[arg-type]
    assert len(found) == 2
    assert found.classes.tolist() == [0, 1]
    assert np.allclose(found.xyxy[0], [8, 8, 12, 12])


def test_map_and_box_agreement() -> None:
    head = _head([(10, 10, 4, 4, 0.9, 0.0), (30, 30, 4, 4, 0.0, 0.8)])
    outputs = {"output0": head}
    truth = Samples(
        {"images": np.zeros((1, 3, 8, 8), np.float32)},
        {
            "boxes": np.array([[8, 8, 12, 12], [28, 28, 32, 32]], np.float32),
            "box_classes": np.array([0, 1]),
            "box_item": np.array([0, 0]),
        },
    )
    result = evaluate(YOLO, outputs, truth)
    assert result.metric == "map50" and result.value == pytest.approx(1.0)
    worse = {"output0": _head([(10, 10, 4, 4, 0.9, 0.0), (60, 60, 4, 4, 0.0, 0.8)])}
    assert evaluate(YOLO, worse, truth).value == pytest.approx(0.5)
    unlabeled = Samples(truth.inputs)
    agreement = evaluate(YOLO, worse, unlabeled, reference=outputs)
    assert agreement.metric == "box_agreement" and agreement.value == pytest.approx(0.5)


def test_classification_with_and_without_labels() -> None:
    contract = ModelContract.for_classifier(("a", "b"), ("n", "y", "z"))
    logits = {"logits": np.array([[3, 1, 0], [0, 2, 1], [0, 0, 5]], np.float32)}
    labeled = Samples({"x": np.zeros((3, 2), np.float32)}, {"y": np.array([0, 1, 1])})
    assert evaluate(contract, logits, labeled).metrics["accuracy"] == pytest.approx(2 / 3)
    other = {"logits": np.array([[3, 1, 0], [0, 2, 1], [5, 0, 0]], np.float32)}
    fidelity = evaluate(contract, other, Samples(labeled.inputs), reference=logits)
    assert fidelity.metric == "agreement" and fidelity.value == pytest.approx(2 / 3)


def test_regression_metrics() -> None:
    contract = ModelContract(
        inputs=(TensorSpec("x", "float32", ("batch", 2)),),
        outputs=(TensorSpec("v", "float32", ("batch", 1)),),
        task="regression",
    )
    samples = Samples({"x": np.zeros((4, 2), np.float32)}, {"y": np.array([1, 2, 3, 4], np.float32)})
    result = evaluate(contract, {"v": np.array([[1], [2], [3], [6]], np.float32)}, samples)
    assert result.metric == "rmse" and not result.higher_is_better
    assert result.value == pytest.approx(1.0) and result.metrics["mae"] == pytest.approx(0.5)


def test_mean_pooling_ignores_padding_and_neighbours_overlap() -> None:
    contract = ModelContract(
        inputs=(
            TensorSpec("input_ids", "int64", ("batch", "sequence")),
            TensorSpec("attention_mask", "int64", ("batch", "sequence")),
        ),
        outputs=(TensorSpec("states", "float32", ("batch", "sequence", 2)),),
        task="embedding",
        pooling=Pooling("mean", mask="attention_mask", normalize=False),
    )
    states = np.array([[[1, 1], [3, 3], [100, 100]]], np.float32)
    mask = np.array([[1, 1, 0]])
    vectors = pooled(contract, {"states": states}, {"attention_mask": mask, "input_ids": mask})
    assert vectors.tolist() == [[2.0, 2.0]]
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 8)).astype(np.float32)
    assert neighbour_overlap(a, a) == 1.0
    assert neighbour_overlap(a, rng.normal(size=(30, 8)).astype(np.float32)) < 0.7
