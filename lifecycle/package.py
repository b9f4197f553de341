"""What a registered model version carries, and how it is read back from a local folder.

Layout of a version's ``lifecycle/`` artifact folder (beside the MLflow ONNX model):

- ``contract.json``       input/output spec, feature and class names
- ``reference.npz``       validation inputs ``x``, labels ``y`` and this version's ``logits`` on them
                          (the drift monitor's reference)
- ``data.npz``            the train/val/test arrays used to calibrate, evaluate and retrain
- ``weights.safetensors`` training weights (torch models only; never a pickled module)
- ``architecture.json``   how to rebuild the network before loading the weights
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lifecycle.contract import ModelContract
from lifecycle.data import DataSplits
from lifecycle.errors import ArtifactIntegrityError

CONTRACT_FILE = "contract.json"
REFERENCE_FILE = "reference.npz"
DATA_FILE = "data.npz"
WEIGHTS_FILE = "weights.safetensors"
ARCHITECTURE_FILE = "architecture.json"
ONNX_FILE = "model.onnx"

TAG_PREFIX = "lifecycle."
TAG_ONNX_SHA256 = "lifecycle.onnx_sha256"
TAG_RUN_ID = "lifecycle.run_id"


@dataclass(frozen=True)
class ModelPackage:
    """Everything needed to register one model version."""

    name: str
    onnx_model: bytes
    contract: ModelContract
    files: dict[str, bytes]
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""

    @property
    def onnx_sha256(self) -> str:
        return hashlib.sha256(self.onnx_model).hexdigest()


def npz_bytes(**arrays: NDArray[np.generic]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def splits_npz(data: DataSplits) -> bytes:
    return npz_bytes(
        x_train=data.x_train,
        y_train=data.y_train,
        x_val=data.x_val,
        y_val=data.y_val,
        x_test=data.x_test,
        y_test=data.y_test,
    )


@dataclass(frozen=True)
class Reference:
    x: NDArray[np.float32]
    y: NDArray[np.int64]
    logits: NDArray[np.float32]


@dataclass(frozen=True)
class LocalVersion:
    """A downloaded model version: ONNX file plus the ``lifecycle/`` folder, checksum verified."""

    name: str
    version: str
    onnx_path: Path
    files_dir: Path

    def verify(self, expected_sha256: str | None) -> None:
        """:raises ArtifactIntegrityError: when the ONNX file is not the one registered."""
        if not expected_sha256:
            raise ArtifactIntegrityError(
                f"{self.name} v{self.version} has no {TAG_ONNX_SHA256} tag; refusing an unverifiable artifact"
            )
        actual = hashlib.sha256(self.onnx_path.read_bytes()).hexdigest()
        if actual != expected_sha256:
            raise ArtifactIntegrityError(
                f"{self.name} v{self.version}: {self.onnx_path.name} has sha256 {actual[:12]}…, "
                f"registration recorded {expected_sha256[:12]}…"
            )

    @property
    def contract(self) -> ModelContract:
        return ModelContract.from_json((self.files_dir / CONTRACT_FILE).read_text())

    def reference(self) -> Reference:
        with np.load(self.files_dir / REFERENCE_FILE) as npz:
            return Reference(x=npz["x"], y=npz["y"], logits=npz["logits"])

    def splits(self) -> DataSplits:
        contract = self.contract
        with np.load(self.files_dir / DATA_FILE) as npz:
            return DataSplits(
                name=self.name,
                x_train=npz["x_train"],
                y_train=npz["y_train"],
                x_val=npz["x_val"],
                y_val=npz["y_val"],
                x_test=npz["x_test"],
                y_test=npz["y_test"],
                feature_names=contract.feature_names,
                class_names=contract.class_names,
            )

    @property
    def has_weights(self) -> bool:
        return (self.files_dir / WEIGHTS_FILE).exists() and (self.files_dir / ARCHITECTURE_FILE).exists()
