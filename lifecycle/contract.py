"""The model contract: what goes in, what comes out, and the names that make it readable.

A registered model version = ONNX artifact + this contract + the data used to calibrate and
evaluate it. Serving validates requests against the contract before any runtime sees them.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.errors import LifecycleError

SUPPORTED_DTYPES = ("float32",)
FLOAT32_MAX = float(np.finfo(np.float32).max)

# validate_input reports values that overflow float32 as a contract violation; numpy's warning about
# the same cast would only add noise to the log (np.errstate per call costs more than the cast)
warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning, __name__)


class ContractViolationError(LifecycleError, ValueError):
    """An input does not satisfy the model contract; the message names the problem."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int | None, ...]
    """``None`` marks a dynamic dimension (the batch)."""

    def __post_init__(self) -> None:
        if self.dtype not in SUPPORTED_DTYPES:
            raise ValueError(f"dtype {self.dtype!r} is not supported; use one of {SUPPORTED_DTYPES}")
        if not self.shape or self.shape[0] is not None:
            raise ValueError(f"shape {self.shape} must start with a dynamic batch dimension (None)")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TensorSpec:
        return cls(name=str(raw["name"]), dtype=str(raw["dtype"]), shape=tuple(raw["shape"]))


@dataclass(frozen=True)
class ModelContract:
    input: TensorSpec
    output: TensorSpec
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    task: str = "classification"
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task != "classification":
            raise ValueError(f"task {self.task!r} is not supported yet; only 'classification'")
        if len(self.input.shape) != 2 or self.input.shape[1] != len(self.feature_names):
            raise ValueError(
                f"input shape {self.input.shape} must be (None, {len(self.feature_names)}) "
                "to match the feature names"
            )
        if len(self.output.shape) != 2 or self.output.shape[1] != len(self.class_names):
            raise ValueError(
                f"output shape {self.output.shape} must be (None, {len(self.class_names)}) "
                "to match the class names"
            )

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def validate_input(
        self, x: object, *, max_rows: int | None = None, finite: bool = False
    ) -> NDArray[np.float32]:
        """Return ``x`` as a float32 ``[n, n_features]`` array, or raise naming what is wrong.

        ``finite``: ``x`` holds only numbers known to be finite and within float32's range (a JSON
        parser checked them), so only the shape is checked here. In a server, right after a model
        call has evicted the CPU caches, the dtype, cast and finiteness steps skipped then cost ~60 µs
        per request (measured on the 2-core machine); a tight loop shows a tenth of that."""
        try:
            arr = np.array(x, dtype=np.float32) if finite else np.asarray(x)
        except ValueError as exc:  # nested lists of different lengths
            raise ContractViolationError("input rows are not all the same length") from exc
        if finite:
            return self._check_shape(arr, max_rows)
        if arr.dtype.kind not in "biuf":
            raise ContractViolationError(f"input dtype {arr.dtype} is not numeric")
        self._check_shape(arr, max_rows)
        out = arr.astype(np.float32, copy=False)  # beyond float32's range becomes inf: reported below
        # one reduction: a float64 sum of float32 values is finite exactly when every value is
        if not math.isfinite(out.sum(dtype=np.float64)):
            row, column = np.argwhere(~np.isfinite(out))[0]
            value = arr[row, column]
            beyond = f": {value} is beyond the float32 range" if np.isfinite(value) else ""
            raise ContractViolationError(
                f"input contains NaN or infinity{beyond} (first at row {row}, column {column})"
            )
        return out

    def _check_shape(self, arr: NDArray[Any], max_rows: int | None) -> NDArray[Any]:
        shape = arr.shape
        if len(shape) != 2 or shape[1] != len(self.feature_names):
            raise ContractViolationError(
                f"input shape {tuple(shape)} does not match the contract (n, {self.n_features})"
            )
        if shape[0] == 0:
            raise ContractViolationError("input has no rows")
        if max_rows is not None and shape[0] > max_rows:
            raise ContractViolationError(f"input has {shape[0]} rows; the maximum is {max_rows}")
        return arr

    def to_json(self) -> str:
        return json.dumps(
            {
                "task": self.task,
                "input": self.input.to_dict(),
                "output": self.output.to_dict(),
                "feature_names": list(self.feature_names),
                "class_names": list(self.class_names),
                "metadata": self.metadata,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> ModelContract:
        raw = json.loads(text)
        return cls(
            task=raw["task"],
            input=TensorSpec.from_dict(raw["input"]),
            output=TensorSpec.from_dict(raw["output"]),
            feature_names=tuple(raw["feature_names"]),
            class_names=tuple(raw["class_names"]),
            metadata=dict(raw.get("metadata", {})),
        )

    @classmethod
    def for_classifier(
        cls, feature_names: tuple[str, ...], class_names: tuple[str, ...], *, input_name: str = "x"
    ) -> ModelContract:
        return cls(
            input=TensorSpec(input_name, "float32", (None, len(feature_names))),
            output=TensorSpec("logits", "float32", (None, len(class_names))),
            feature_names=feature_names,
            class_names=class_names,
        )
