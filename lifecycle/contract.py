"""The model contract: named typed tensors in and out, and the task that says how to read the outputs.

A registered model version = a model artifact + this contract + the data used to calibrate and
evaluate it. Every stage reads the contract instead of assuming a shape: serving checks requests
against it before any runtime sees them, evaluation and gates pick the task's metric, monitoring
picks its detectors. Tasks:

- ``classification``: the primary output is (batch, classes) of logits or probabilities;
- ``regression``: the primary output is (batch,) or (batch, targets);
- ``embedding``: a vector per item; when the graph outputs token states (batch, sequence, dim), the
  pooling (e.g. mean over the attention mask) is part of the contract;
- ``detection``: boxes, scores and classes, decoded from a YOLOv8 raw head (batch, 4 + classes,
  anchors) or read from outputs that already are boxes;
- ``tensors``: any outputs, compared by error against the FP32 reference.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.tensors import DTYPES, ContractViolationError, TensorSpec, check_tensors

__all__ = [
    "DTYPES",
    "FLOAT32_MAX",
    "TASKS",
    "ContractViolationError",
    "Detection",
    "ModelContract",
    "Pooling",
    "TensorSpec",
]

TASKS = ("classification", "regression", "embedding", "detection", "tensors")
FORMAT_VERSION = 2
FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOATS = ("float32", "float16", "float64")

# validate_input reports values that overflow float32 as a contract violation; numpy's warning about
# the same cast would only add noise to the log (np.errstate per call costs more than the cast)
warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning, __name__)


@dataclass(frozen=True)
class Pooling:
    """How token states become one vector per item (embedding task)."""

    method: str = "mean"
    """``mean`` over the unmasked tokens, ``cls`` (the first token), or ``none`` (already a vector)."""
    mask: str | None = "attention_mask"
    """The input whose zeros mark padding (mean pooling); ``None``: every token counts."""
    normalize: bool = True
    """L2-normalise the pooled vector (sentence-transformers models end with this)."""

    def __post_init__(self) -> None:
        if self.method not in ("mean", "cls", "none"):
            raise ValueError(f"pooling {self.method!r}; use mean, cls or none")


@dataclass(frozen=True)
class Detection:
    """How a detector's outputs become boxes (xyxy in input pixels), scores and classes."""

    decoder: str = "yolov8"
    """``yolov8``: the primary output is (batch, 4 + classes, anchors) with centre-xywh boxes and
    per-class scores; ``boxes``: outputs ``boxes`` (batch, n, 4) xyxy, ``scores`` (batch, n) and
    optionally ``classes`` (batch, n) already decoded."""
    boxes: str = ""
    scores: str = ""
    classes: str = ""
    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_boxes: int = 300

    def __post_init__(self) -> None:
        if self.decoder not in ("yolov8", "boxes"):
            raise ValueError(f"detection decoder {self.decoder!r}; use yolov8 or boxes")
        if not 0 <= self.score_threshold < 1 or not 0 < self.iou_threshold <= 1 or self.max_boxes < 1:
            raise ValueError("detection thresholds must lie in [0, 1) and max_boxes be ≥ 1")


@dataclass(frozen=True)
class ModelContract:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    task: str = "classification"
    primary_output: str = ""
    """The output the task reads (class scores, predictions, states, raw head); default: the first."""
    feature_names: tuple[str, ...] = ()
    """Column names of a tabular model's one (batch, features) input."""
    class_names: tuple[str, ...] = ()
    target_names: tuple[str, ...] = ()
    scores: str = "logits"
    """Classification: the primary output holds ``logits`` or ``probabilities``."""
    pooling: Pooling | None = None
    detection: Detection | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        for label, names in (("feature", self.feature_names), ("class", self.class_names)):
            object.__setattr__(self, f"{label}_names", tuple(str(n) for n in names))
        object.__setattr__(self, "target_names", tuple(str(n) for n in self.target_names))
        if not self.inputs or not self.outputs:
            raise ValueError("a contract needs at least one input and one output")
        tensor_names = [t.name for t in (*self.inputs, *self.outputs)]
        if len(set(tensor_names)) != len(tensor_names):
            raise ValueError(f"tensor names must be unique across inputs and outputs: {tensor_names}")
        if self.task not in TASKS:
            raise ValueError(f"task {self.task!r} is not one of {TASKS}")
        if not self.primary_output:
            object.__setattr__(self, "primary_output", self.outputs[0].name)
        if self.primary_output not in {o.name for o in self.outputs}:
            raise ValueError(f"primary output {self.primary_output!r} is not an output of the contract")
        if self.feature_names:
            self._check_features()
        checks: dict[str, Callable[[], None]] = {
            "classification": self._check_classification,
            "regression": self._check_regression,
            "embedding": self._check_embedding,
            "detection": self._check_detection,
            "tensors": lambda: None,
        }
        checks[self.task]()

    # -- consistency of the task with the tensors ------------------------------------------------
    def _check_features(self) -> None:
        if (
            len(self.inputs) != 1
            or self.inputs[0].rank != 2
            or self.inputs[0].shape[1] != len(self.feature_names)
        ):
            raise ValueError(
                f"{len(self.feature_names)} feature names need one input of shape (batch, "
                f"{len(self.feature_names)}); the inputs are {[i.describe() for i in self.inputs]}"
            )

    def _check_classification(self) -> None:
        out = self.output
        if out.rank != 2 or out.dtype not in _FLOATS:
            raise ValueError(f"a classifier's primary output is float (batch, classes); got {out.describe()}")
        if self.scores not in ("logits", "probabilities"):
            raise ValueError(f"scores {self.scores!r}; use logits or probabilities")
        n = out.shape[1]
        if not self.class_names:
            if not isinstance(n, int):
                raise ValueError(f"output {out.name!r} has a dynamic class dimension: name the classes")
            object.__setattr__(self, "class_names", tuple(str(i) for i in range(n)))
        elif isinstance(n, int) and n != len(self.class_names):
            raise ValueError(
                f"output shape {out.shape} must be (batch, {len(self.class_names)}) to match the class names"
            )

    def _check_regression(self) -> None:
        out = self.output
        if out.rank not in (1, 2) or out.dtype not in _FLOATS:
            raise ValueError(
                f"a regressor's primary output is float (batch,) or (batch, targets); got {out.describe()}"
            )
        n = 1 if out.rank == 1 else out.shape[1]
        if not self.target_names:
            if not isinstance(n, int):
                raise ValueError(f"output {out.name!r} has a dynamic target dimension: name the targets")
            object.__setattr__(
                self, "target_names", ("target",) if n == 1 else tuple(f"target_{i}" for i in range(n))
            )
        elif isinstance(n, int) and n != len(self.target_names):
            raise ValueError(f"output shape {out.shape} holds {n} targets, not {len(self.target_names)}")

    def _check_embedding(self) -> None:
        out = self.output
        if out.dtype not in _FLOATS or out.rank not in (2, 3):
            raise ValueError(
                f"an embedding output is float (batch, dim) or token states (batch, sequence, dim); got {out.describe()}"
            )
        if out.rank == 3 and (self.pooling is None or self.pooling.method == "none"):
            raise ValueError(
                f"output {out.name!r} holds token states {out.shape}: the contract needs a pooling"
            )
        mask = self.pooling.mask if self.pooling is not None else None
        if mask is not None and mask not in {i.name for i in self.inputs}:
            raise ValueError(f"pooling mask {mask!r} is not an input of the contract")

    def _check_detection(self) -> None:
        spec = self.detection
        if spec is None:
            raise ValueError("a detection contract needs a detection decoder (yolov8 or boxes)")
        outputs = {o.name: o for o in self.outputs}
        if spec.decoder == "yolov8":
            out = self.output
            if out.rank != 3 or not isinstance(out.shape[1], int) or out.shape[1] < 5:
                raise ValueError(f"a YOLOv8 head is (batch, 4 + classes, anchors); got {out.describe()}")
            n = out.shape[1] - 4
            if not self.class_names:
                object.__setattr__(self, "class_names", tuple(str(i) for i in range(n)))
            elif n != len(self.class_names):
                raise ValueError(
                    f"the head scores {n} classes but {len(self.class_names)} class names are given"
                )
            return
        for role in ("boxes", "scores"):
            if getattr(spec, role) not in outputs:
                raise ValueError(
                    f"detection {role} output {getattr(spec, role)!r} is not an output of the contract"
                )
        if spec.classes and spec.classes not in outputs:
            raise ValueError(f"detection classes output {spec.classes!r} is not an output of the contract")

    # -- reading ---------------------------------------------------------------------------------
    @property
    def output(self) -> TensorSpec:
        """The primary output's spec."""
        return next(o for o in self.outputs if o.name == self.primary_output)

    @property
    def input(self) -> TensorSpec:
        """The one input of a single-input model.

        :raises ContractViolationError: when the model takes several inputs."""
        if len(self.inputs) != 1:
            raise ContractViolationError(
                f"the model takes {len(self.inputs)} inputs ({', '.join(self.input_names)}), not one"
            )
        return self.inputs[0]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    @property
    def is_tabular(self) -> bool:
        """One float (batch, features) input with a fixed feature count: the JSON rows path fits."""
        if len(self.inputs) != 1:
            return False
        spec = self.inputs[0]
        return spec.rank == 2 and isinstance(spec.shape[1], int) and spec.dtype == "float32"

    @property
    def n_features(self) -> int:
        """Features of a tabular model's input row.

        :raises ContractViolationError: when the model is not tabular."""
        if not self.is_tabular:
            raise ContractViolationError(
                f"the model takes {', '.join(i.describe() for i in self.inputs)}, not rows of float32 features"
            )
        return int(self.inputs[0].shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> str:
        ins = ", ".join(i.describe() for i in self.inputs)
        outs = ", ".join(o.describe() for o in self.outputs)
        detail = {
            "classification": f"{self.n_classes} classes ({self.scores})",
            "regression": f"{len(self.target_names)} target(s)",
            "embedding": f"pooling {self.pooling.method}" if self.pooling else "vectors",
            "detection": f"{self.detection.decoder if self.detection else ''} decoder, {self.n_classes} classes",
            "tensors": "outputs compared by error",
        }[self.task]
        return f"{ins} → {outs}; {self.task}, {detail}"

    # -- validation of data --------------------------------------------------------------------------
    def validate_inputs(
        self, tensors: Mapping[str, object], *, max_batch: int | None = None
    ) -> dict[str, NDArray[Any]]:
        """Named input arrays checked against the contract, in contract order.

        :raises ContractViolationError: naming the tensor and what was expected."""
        return check_tensors(self.inputs, tensors, what="input", max_batch=max_batch)

    def validate_outputs(self, tensors: Mapping[str, object]) -> dict[str, NDArray[Any]]:
        """A model's answers checked against the contract's outputs (a graph whose outputs differ
        from what it declares is caught at registration)."""
        return check_tensors(self.outputs, tensors, what="output", allow_empty=True)

    def validate_input(
        self, x: object, *, max_rows: int | None = None, finite: bool = False
    ) -> NDArray[np.float32]:
        """Rows of a tabular model as a float32 ``[n, n_features]`` array, or raise naming what is wrong.

        ``finite``: ``x`` holds only numbers known to be finite and within float32's range (a JSON
        parser checked them), so only the shape is checked here. In a server, right after a model
        call has evicted the CPU caches, the dtype, cast and finiteness steps skipped then cost ~60 µs
        per request (measured on the 2-core machine); a tight loop shows a tenth of that."""
        n_features = self.n_features
        try:
            arr = np.array(x, dtype=np.float32) if finite else np.asarray(x)
        except ValueError as exc:  # nested lists of different lengths
            raise ContractViolationError("input rows are not all the same length") from exc
        if finite:
            return self._check_rows(arr, n_features, max_rows)
        if arr.dtype.kind not in "biuf":
            raise ContractViolationError(f"input dtype {arr.dtype} is not numeric")
        self._check_rows(arr, n_features, max_rows)
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

    @staticmethod
    def _check_rows(arr: NDArray[Any], n_features: int, max_rows: int | None) -> NDArray[Any]:
        shape = arr.shape
        if len(shape) != 2 or shape[1] != n_features:
            raise ContractViolationError(
                f"input shape {tuple(shape)} does not match the contract (n, {n_features})"
            )
        if shape[0] == 0:
            raise ContractViolationError("input has no rows")
        if max_rows is not None and shape[0] > max_rows:
            raise ContractViolationError(f"input has {shape[0]} rows; the maximum is {max_rows}")
        return arr

    # -- storage -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "task": self.task,
            "inputs": [i.to_dict() for i in self.inputs],
            "outputs": [o.to_dict() for o in self.outputs],
            "primary_output": self.primary_output,
            "feature_names": list(self.feature_names),
            "class_names": list(self.class_names),
            "target_names": list(self.target_names),
            "scores": self.scores,
            "pooling": None if self.pooling is None else self.pooling.__dict__,
            "detection": None if self.detection is None else self.detection.__dict__,
            "metadata": self.metadata,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ModelContract:
        if "inputs" not in raw:  # the first format: one input, one output, a classifier
            return cls(
                inputs=(TensorSpec.from_dict(raw["input"]),),
                outputs=(TensorSpec.from_dict(raw["output"]),),
                task=str(raw.get("task", "classification")),
                feature_names=tuple(raw.get("feature_names", ())),
                class_names=tuple(raw.get("class_names", ())),
                metadata=dict(raw.get("metadata", {})),
            )
        pooling, detection = raw.get("pooling"), raw.get("detection")
        return cls(
            inputs=tuple(TensorSpec.from_dict(i) for i in raw["inputs"]),
            outputs=tuple(TensorSpec.from_dict(o) for o in raw["outputs"]),
            task=str(raw["task"]),
            primary_output=str(raw.get("primary_output", "")),
            feature_names=tuple(raw.get("feature_names", ())),
            class_names=tuple(raw.get("class_names", ())),
            target_names=tuple(raw.get("target_names", ())),
            scores=str(raw.get("scores", "logits")),
            pooling=None if pooling is None else Pooling(**pooling),
            detection=None if detection is None else Detection(**detection),
            metadata=dict(raw.get("metadata", {})),
        )

    @classmethod
    def from_json(cls, text: str) -> ModelContract:
        return cls.from_dict(json.loads(text))

    @classmethod
    def for_classifier(
        cls, feature_names: Sequence[str], class_names: Sequence[str], *, input_name: str = "x"
    ) -> ModelContract:
        """A tabular classifier: one float32 (batch, features) input, (batch, classes) logits."""
        return cls(
            inputs=(TensorSpec(input_name, "float32", ("batch", len(feature_names))),),
            outputs=(TensorSpec("logits", "float32", ("batch", len(class_names))),),
            feature_names=tuple(feature_names),
            class_names=tuple(class_names),
        )
