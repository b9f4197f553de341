from __future__ import annotations

import json

import numpy as np
import pytest

from lifecycle.contract import ContractViolationError, Detection, ModelContract, Pooling, TensorSpec

CONTRACT = ModelContract.for_classifier(("a", "b", "c"), ("no", "yes"))


def test_valid_input_is_returned_as_float32() -> None:
    out = CONTRACT.validate_input(np.array([[1, 2, 3]], dtype=np.int64))
    assert out.dtype == np.float32
    assert out.shape == (1, 3)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((2, 4)), r"shape \(2, 4\) does not match the contract \(n, 3\)"),
        (np.zeros(3), r"shape \(3,\)"),
        (np.zeros((0, 3)), "no rows"),
        (np.array([[1.0, np.nan, 2.0]]), "NaN or infinity .*row 0, column 1"),
        (np.array([[1.0, 2.0, np.inf]]), "NaN or infinity"),
        (np.array([["x", "y", "z"]]), "not numeric"),
        ([[1.0, 2.0, 3.0], [1.0, 2.0]], "rows are not all the same length"),
        ([[1.0, 1e39, 2.0]], r"1e\+39 is beyond the float32 range \(first at row 0, column 1\)"),
    ],
)
def test_bad_input_names_the_problem(x: object, message: str) -> None:
    with pytest.raises(ContractViolationError, match=message):
        CONTRACT.validate_input(x)


def test_rows_known_finite_are_checked_for_shape_only() -> None:
    out = CONTRACT.validate_input([[1.0, 2.0, 3.0]], finite=True)
    assert out.dtype == np.float32 and out.tolist() == [[1.0, 2.0, 3.0]]
    with pytest.raises(ContractViolationError, match=r"shape \(1, 2\) does not match the contract"):
        CONTRACT.validate_input([[1.0, 2.0]], finite=True)
    with pytest.raises(ContractViolationError, match="rows are not all the same length"):
        CONTRACT.validate_input([[1.0, 2.0, 3.0], [1.0]], finite=True)
    with pytest.raises(ContractViolationError, match="2 rows; the maximum is 1"):
        CONTRACT.validate_input([[1.0, 2.0, 3.0]] * 2, max_rows=1, finite=True)


def test_row_limit() -> None:
    with pytest.raises(ContractViolationError, match="5 rows; the maximum is 4"):
        CONTRACT.validate_input(np.zeros((5, 3)), max_rows=4)


def test_json_round_trip() -> None:
    assert ModelContract.from_json(CONTRACT.to_json()) == CONTRACT


def test_inconsistent_contract_is_rejected() -> None:
    with pytest.raises(ValueError, match="feature names"):
        ModelContract(
            inputs=(TensorSpec("x", "float32", (None, 4)),),
            outputs=(TensorSpec("logits", "float32", (None, 2)),),
            feature_names=("a",),
            class_names=("n", "y"),
        )
    with pytest.raises(ValueError, match="dynamic batch"):
        TensorSpec("x", "float32", (1, 4))
    with pytest.raises(ValueError, match="dtype 'complex64' is not supported"):
        TensorSpec("x", "complex64", ("batch", 4))
    with pytest.raises(ValueError, match=r"match the class names"):
        ModelContract.for_classifier(("a",), ("n", "y", "z")).__class__(
            inputs=(TensorSpec("x", "float32", ("batch", 1)),),
            outputs=(TensorSpec("logits", "float32", ("batch", 2)),),
            class_names=("n", "y", "z"),
        )


IMAGE = ModelContract(
    inputs=(TensorSpec("x", "float32", ("batch", 3, 48, 192)),),
    outputs=(TensorSpec("probs", "float32", ("batch", 2)),),
    class_names=("0", "180"),
    scores="probabilities",
)
TEXT = ModelContract(
    inputs=(
        TensorSpec("input_ids", "int64", ("batch", "sequence"), pad_value=0),
        TensorSpec("attention_mask", "int64", ("batch", "sequence"), pad_value=0),
    ),
    outputs=(TensorSpec("token_embeddings", "float32", ("batch", "sequence", 384)),),
    task="embedding",
    pooling=Pooling("mean", mask="attention_mask"),
)


def test_named_tensors_are_checked_by_name_dtype_and_shape() -> None:
    ok = IMAGE.validate_inputs({"x": np.zeros((2, 3, 48, 192), np.float32)})
    assert list(ok) == ["x"] and ok["x"].shape == (2, 3, 48, 192)
    ids = np.ones((2, 7), np.int64)
    assert TEXT.validate_inputs({"input_ids": ids, "attention_mask": ids})["input_ids"] is not None


@pytest.mark.parametrize(
    ("contract", "tensors", "message"),
    [
        (
            IMAGE,
            {"y": np.zeros((1, 3, 48, 192), np.float32)},
            r"missing input tensor\(s\) \['x'\].*unknown input tensor\(s\) \['y'\]",
        ),
        (
            IMAGE,
            {"x": np.zeros((1, 3, 48, 192), np.float64)},
            r"'x' has dtype float64; the contract expects x float32 \(batch, 3, 48, 192\)",
        ),
        (IMAGE, {"x": np.zeros((1, 3, 48), np.float32)}, r"'x' has shape \(1, 3, 48\) \(rank 3\)"),
        (IMAGE, {"x": np.zeros((1, 3, 32, 192), np.float32)}, r"dimension 2 must be 48"),
        (IMAGE, {"x": np.zeros((0, 3, 48, 192), np.float32)}, r"no items"),
        (
            TEXT,
            {"input_ids": np.ones((2, 7), np.int64), "attention_mask": np.ones((2, 6), np.int64)},
            r"'attention_mask' has sequence=6 but 'input_ids' has sequence=7",
        ),
        (
            TEXT,
            {"input_ids": np.ones((2, 7), np.int64), "attention_mask": np.ones((2, 7), np.int32)},
            r"'attention_mask' has dtype int32",
        ),
    ],
)
def test_bad_named_tensors_name_the_tensor(
    contract: ModelContract, tensors: dict[str, np.ndarray], message: str
) -> None:
    with pytest.raises(ContractViolationError, match=message):
        contract.validate_inputs(tensors)


def test_batch_limit_and_disagreeing_batches() -> None:
    ids = np.ones((3, 4), np.int64)
    with pytest.raises(ContractViolationError, match="3 items; the maximum is 2"):
        TEXT.validate_inputs({"input_ids": ids, "attention_mask": ids}, max_batch=2)
    with pytest.raises(
        ContractViolationError, match="'attention_mask' has batch=2 but 'input_ids' has batch=3"
    ):
        TEXT.validate_inputs({"input_ids": ids, "attention_mask": ids[:2]})


def test_rows_path_is_for_tabular_models_only() -> None:
    assert CONTRACT.is_tabular and not IMAGE.is_tabular and not TEXT.is_tabular
    with pytest.raises(ContractViolationError, match="not rows of float32 features"):
        IMAGE.validate_input([[1.0, 2.0]])
    with pytest.raises(ContractViolationError, match="takes 2 inputs"):
        _ = TEXT.input


@pytest.mark.parametrize("contract", [CONTRACT, IMAGE, TEXT])
def test_every_task_round_trips_through_json(contract: ModelContract) -> None:
    assert ModelContract.from_json(contract.to_json()) == contract


def test_the_first_json_format_still_reads() -> None:
    old = {
        "task": "classification",
        "input": {"name": "x", "dtype": "float32", "shape": [None, 3]},
        "output": {"name": "logits", "dtype": "float32", "shape": [None, 2]},
        "feature_names": ["a", "b", "c"],
        "class_names": ["no", "yes"],
        "metadata": {},
    }
    contract = ModelContract.from_json(json.dumps(old))
    assert contract == CONTRACT
    assert contract.inputs[0].shape == ("batch", 3)


def test_task_rules() -> None:
    states = TensorSpec("h", "float32", ("batch", "sequence", 8))
    ids = TensorSpec("ids", "int64", ("batch", "sequence"))
    with pytest.raises(ValueError, match="needs a pooling"):
        ModelContract(inputs=(ids,), outputs=(states,), task="embedding")
    with pytest.raises(ValueError, match="pooling mask 'attention_mask' is not an input"):
        ModelContract(inputs=(ids,), outputs=(states,), task="embedding", pooling=Pooling())
    head = TensorSpec("output0", "float32", ("batch", 22, "anchors"))
    image = TensorSpec("images", "float32", ("batch", 3, 320, 320))
    yolo = ModelContract(inputs=(image,), outputs=(head,), task="detection", detection=Detection())
    assert yolo.n_classes == 18
    with pytest.raises(ValueError, match="needs a detection decoder"):
        ModelContract(inputs=(image,), outputs=(head,), task="detection")
    with pytest.raises(ValueError, match="scores 18 classes but 2 class names"):
        ModelContract(
            inputs=(image,), outputs=(head,), task="detection", detection=Detection(), class_names=("a", "b")
        )
    value = TensorSpec("variable", "float32", ("batch", 1))
    reg = ModelContract(inputs=(image,), outputs=(value,), task="regression")
    assert reg.target_names == ("target",)
    with pytest.raises(ValueError, match="dynamic class dimension: name the classes"):
        ModelContract(inputs=(image,), outputs=(TensorSpec("p", "float32", ("batch", "k")),))
    with pytest.raises(ValueError, match="task 'ranking' is not one of"):
        ModelContract(inputs=(image,), outputs=(value,), task="ranking")
    assert "detection" in yolo.describe() and "images float32 (batch, 3, 320, 320)" in yolo.describe()
