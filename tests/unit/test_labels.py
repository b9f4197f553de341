"""Feedback labels checked against the model's task (``lifecycle.labels``)."""

from __future__ import annotations

import pytest

from lifecycle.contract import ContractViolationError, Detection, ModelContract, Pooling, TensorSpec
from lifecycle.labels import Label, parse_label

CLASSIFIER = ModelContract.for_classifier(("a", "b"), ("cat", "dog"))
REGRESSOR = ModelContract(
    inputs=(TensorSpec("x", "float32", ("batch", 3)),),
    outputs=(TensorSpec("y", "float32", ("batch", 2)),),
    task="regression",
    target_names=("price", "rent"),
)
DETECTOR = ModelContract(
    inputs=(TensorSpec("images", "float32", ("batch", 3, 32, 32)),),
    outputs=(TensorSpec("output0", "float32", ("batch", 6, "anchors")),),
    task="detection",
    detection=Detection(),
)
EMBEDDER = ModelContract(
    inputs=(TensorSpec("input_ids", "int64", ("batch", "sequence")),),
    outputs=(TensorSpec("v", "float32", ("batch", 8)),),
    task="embedding",
    pooling=Pooling(method="none", mask=None),
)


def test_a_classifier_takes_a_class_by_name_or_index() -> None:
    assert parse_label(CLASSIFIER, "dog") == Label(index=1) == parse_label(CLASSIFIER, 1)
    for bad, message in (("cow", "unknown label 'cow'"), (2, "out of range 0..1"), (True, "is not a class")):
        with pytest.raises(ContractViolationError, match=message):
            parse_label(CLASSIFIER, bad)


def test_a_regressor_takes_one_finite_number_per_target() -> None:
    label = parse_label(REGRESSOR, [1.5, 2])
    assert label.target == {"values": [1.5, 2.0]} and label.describe(REGRESSOR) == "price=1.5, rent=2"
    for bad in (1.5, [1.0], [1.0, float("nan")], ["1", 2], "x"):
        with pytest.raises(ContractViolationError, match=r"2 numbers \(price, rent\)"):
            parse_label(REGRESSOR, bad)


def test_a_detector_takes_boxes_with_classes_and_an_empty_list() -> None:
    label = parse_label(DETECTOR, [{"box": [1, 2, 10, 12], "class": 1}, {"box": [0, 0, 1, 1], "class": "1"}])
    assert label.target == {"boxes": [[1.0, 2.0, 10.0, 12.0], [0.0, 0.0, 1.0, 1.0]], "classes": [1, 1]}
    assert parse_label(DETECTOR, []).describe(DETECTOR) == "0 boxes"
    with pytest.raises(ContractViolationError, match=r"box 0: x2 ≥ x1"):
        parse_label(DETECTOR, [{"box": [10, 0, 1, 5]}])
    with pytest.raises(ContractViolationError, match=r"box 0: a list of"):
        parse_label(DETECTOR, [{"box": [1, 2, 3]}])
    with pytest.raises(ContractViolationError, match="unknown label 'person'"):
        parse_label(DETECTOR, [{"box": [0, 0, 1, 1], "class": "person"}])


def test_an_embedding_model_takes_no_label() -> None:
    with pytest.raises(ContractViolationError, match="task 'embedding' takes no label"):
        parse_label(EMBEDDER, [0.1] * 8)
