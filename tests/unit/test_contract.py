from __future__ import annotations

import numpy as np
import pytest

from lifecycle.contract import ContractViolationError, ModelContract, TensorSpec

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
            input=TensorSpec("x", "float32", (None, 4)),
            output=TensorSpec("logits", "float32", (None, 2)),
            feature_names=("a",),
            class_names=("n", "y"),
        )
    with pytest.raises(ValueError, match="dynamic batch"):
        TensorSpec("x", "float32", (1, 4))
