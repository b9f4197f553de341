"""What recipes take (the parent) and give (a variant)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from lifecycle.contract import ModelContract
from lifecycle.data import DataSplits
from lifecycle.errors import LifecycleError
from lifecycle.nets import Architecture
from lifecycle.samples import TensorData
from optimize.gates import GateConfig


class RecipeSkippedError(LifecycleError):
    """A recipe cannot run here (missing hardware or library); recorded as skipped with the reason."""


class RecipeFailedError(LifecycleError):
    """A recipe ran and failed; recorded as a failed child run."""


@dataclass(frozen=True)
class Parent:
    """The registered version being optimized."""

    name: str
    version: str
    onnx_model: bytes
    contract: ModelContract
    data: TensorData
    module: nn.Module | None = None
    """The torch network, when the version carries weights (needed by pruning and distillation)."""
    architecture: Architecture | None = None
    teacher_version: str | None = None

    @property
    def splits(self) -> DataSplits:
        """The one-input labeled view that the torch training recipes (pruning, distillation, QAT)
        take.

        :raises RecipeSkippedError: for models other than tabular classifiers with labels."""
        contract = self.contract
        if not contract.is_tabular or contract.task != "classification" or self.data.train.y is None:
            raise RecipeSkippedError(
                f"{self.name} v{self.version} is {contract.describe()}; this recipe trains tabular "
                "classifiers with labels only"
            )
        return self.data.to_splits(contract.feature_names, contract.class_names)

    def describe(self) -> str:
        return f"{self.name} v{self.version}"

    @classmethod
    def of_splits(
        cls,
        name: str,
        version: str,
        onnx_model: bytes,
        contract: ModelContract,
        splits: DataSplits,
        **extra: Any,
    ) -> Parent:
        """A parent from a tabular ``DataSplits`` (the built-in examples and the retrain pipeline)."""
        return cls(
            name,
            version,
            onnx_model,
            contract,
            TensorData.from_splits(splits, contract.inputs[0].name),
            **extra,
        )


@dataclass(frozen=True)
class RecipeOptions:
    max_accuracy_drop: float = 0.005
    """The accuracy gate, also used by INT8 recipes to decide whether to escalate."""
    gates: GateConfig | None = None
    """Every quality gate (per task) that INT8 escalation must meet; default: the accuracy drop
    above and the other gates' defaults."""
    calibration_method: str = "minmax"
    """minmax, entropy or percentile (ORT static quantization)."""
    calibration_size: int = 128
    seed: int = 0
    fine_tune_epochs: int = 5
    fine_tune_lr: float = 3e-3
    prune_amount: float = 0.5
    distill_temperature: float = 2.0
    distill_alpha: float = 0.7
    distill_epochs: int = 60

    def gate_config(self) -> GateConfig:
        return self.gates or GateConfig(max_accuracy_drop=self.max_accuracy_drop)


@dataclass
class Variant:
    recipe: str
    format: str
    """``onnx`` or ``openvino``."""
    files: dict[str, Path]
    """Model files on disk: ``{"model.onnx": path}`` or ``{"model.xml": ..., "model.bin": ...}``."""
    runtime: str
    settings: dict[str, str] = field(default_factory=dict)
    inference_precision: str | None = None
    """Precision hint the runtime is told (OpenVINO); recorded beside the precision that executed."""
    notes: list[str] = field(default_factory=list)
    attempts: list[dict[str, str]] = field(default_factory=list)
    """Escalation steps tried before this variant (INT8 accuracy rescue), in order."""
    module: nn.Module | None = None
    architecture: Architecture | None = None

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files.values())

    def read_files(self) -> dict[str, bytes]:
        return {name: path.read_bytes() for name, path in self.files.items()}
