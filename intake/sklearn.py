"""A scikit-learn estimator or pipeline → ONNX (skl2onnx), checked against scikit-learn itself.

The estimator is unpickled (joblib) here, at registration, and never again: serving runs the ONNX
graph. Load only files you trust — unpickling runs code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from intake.graph_contract import ContractOptions
from lifecycle.errors import ExportError

INPUT = "X"


@dataclass(frozen=True)
class Converted:
    onnx_model: bytes
    options: ContractOptions
    max_abs_diff: float
    """Largest difference between scikit-learn's and ONNX Runtime's answers on the given rows."""
    classes: tuple[Any, ...] = ()
    """A classifier's ``classes_``: labels in the data are mapped to their index."""
    notes: str = ""


def load_estimator(path: str | Path) -> Any:
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:
        raise ExportError(f"{path}: cannot be loaded with joblib ({type(exc).__name__}: {exc})") from exc


def convert(estimator: Any, x: NDArray[Any], *, opset: int = 17) -> Converted:
    """:raises ExportError: naming the estimator skl2onnx cannot convert."""
    # skl2onnx and ONNX Runtime load only when an estimator is converted
    from skl2onnx import to_onnx

    from lifecycle.runtimes.onnxruntime import OrtRunner  # ONNX Runtime loads to check the conversion

    x = np.asarray(x, dtype=np.float32)
    is_classifier = hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_")
    options = {id(estimator): {"zipmap": False}} if is_classifier else None
    try:
        onnx_model = to_onnx(
            estimator,
            x[:1],
            target_opset=opset,
            options=options,
            final_types=None,
            initial_types=[(INPUT, _float_input(x))],
        ).SerializeToString()
    except Exception as exc:
        raise ExportError(
            f"skl2onnx cannot convert {type(estimator).__name__}: {type(exc).__name__}: {exc}"
        ) from exc
    outputs = OrtRunner(onnx_model).run_named({INPUT: x})
    if is_classifier:
        expected = np.asarray(estimator.predict_proba(x), dtype=np.float32)
        got = outputs["probabilities"]
        classes = tuple(estimator.classes_.tolist())
        contract = ContractOptions(
            task="classification", primary_output="probabilities", scores="probabilities",
            class_names=tuple(str(c) for c in classes),
        )  # fmt: skip
    else:
        expected = np.asarray(estimator.predict(x), dtype=np.float32).reshape(len(x), -1)
        got = next(iter(outputs.values())).reshape(len(x), -1)
        classes = ()
        contract = ContractOptions(task="regression")
    diff = float(np.abs(expected - got).max())
    return Converted(onnx_model, contract, diff, classes)


def _float_input(x: NDArray[Any]) -> Any:
    from skl2onnx.common.data_types import FloatTensorType

    return FloatTensorType([None, x.shape[1]])


def class_index(y: NDArray[Any], classes: tuple[Any, ...]) -> NDArray[np.int64]:
    """Labels as indices into ``classes`` (what the contract's class ids are).

    :raises ExportError: naming labels the estimator does not know."""
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted({v for v in y.tolist() if v not in lookup}, key=str)
    if unknown:
        raise ExportError(f"labels {unknown[:5]} are not among the estimator's classes {list(classes)}")
    return np.array([lookup[v] for v in y.tolist()], dtype=np.int64)
