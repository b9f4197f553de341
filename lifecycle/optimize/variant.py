"""What recipes take (the parent) and give (a variant)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from lifecycle.contract import ModelContract
from lifecycle.data import DataSplits
from lifecycle.errors import LifecycleError
from lifecycle.nets import Architecture


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
    data: DataSplits
    module: nn.Module | None = None
    """The torch network, when the version carries weights (needed by pruning and distillation)."""
    architecture: Architecture | None = None
    teacher_version: str | None = None


@dataclass(frozen=True)
class RecipeOptions:
    max_accuracy_drop: float = 0.005
    """The accuracy gate, also used by INT8 recipes to decide whether to escalate."""
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
